//! Local runs (`gantry run`): the terminal printer, the `.gantry/runs` store and the summary.

pub mod driver;
pub mod printer;
pub mod store;
pub mod summary;
