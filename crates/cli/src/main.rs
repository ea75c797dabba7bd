use std::process::ExitCode;

fn main() -> ExitCode {
    gantry_cli::main()
}
