//! Terminal styling. Colour only when the stream is a terminal and `NO_COLOR` is unset
//! (anstream strips escape codes otherwise), so pipes and files get plain text.

use std::io::IsTerminal;

/// Whether stdout should carry colour.
pub fn stdout_color() -> bool {
    color_for(std::io::stdout().is_terminal())
}

/// Whether stderr should carry colour.
pub fn stderr_color() -> bool {
    color_for(std::io::stderr().is_terminal())
}

fn color_for(is_terminal: bool) -> bool {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    is_terminal
}
