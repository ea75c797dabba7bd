//! Workflow commands: the lines a step prints to ask the runner for something
//! (`::warning file=a.rs,line=3::text`, `::add-mask::value`, `::group::title`...).
//!
//! [`parse_command`] recognises the two syntaxes GitHub's runner accepts: `::name k=v,k=v::data`
//! at the start of a line (after optional whitespace) and the legacy `##[name k=v;k=v]data`
//! anywhere in a line, with their escapes. [`CommandProcessor`] holds the command state of one
//! step (echo, `stop-commands`) and turns each output line into a [`LineOutcome`]: whether the
//! line is shown and what it asks for ([`Effect`]). It applies nothing itself: the runner
//! registers masks, opens groups, records annotations and fails the step.
//!
//! Differences from GitHub's runner are listed in `docs/compat/runner.md`: `notice` is always on.
//! `set-output` and `save-state` work, with GitHub's deprecation warning, as they still do on
//! GitHub; `set-env` and `add-path` are refused, as on GitHub.

use gantry_protocol::{Annotation, AnnotationLevel};

/// Whether `text` (a line, or many) may hold a workflow command (`::name::` or `##[name]`);
/// text for which this is false is shown as it is, whatever the processor's state.
pub fn may_hold_command(text: &str) -> bool {
    text.contains("::") || text.contains("##[")
}

/// GitHub's message for `set-env` and `add-path` unless `ACTIONS_ALLOW_UNSECURE_COMMANDS`.
pub const UNSECURE_COMMAND_DISABLED: &str = "The `{command}` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/";

/// GitHub's message for an invalid `stop-commands` token.
pub const STOP_TOKEN_REFUSED: &str = "You cannot use a endToken that is an empty string, the string 'pause-logging', or another workflow command. For more information see: https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands or opt into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`.";

const STOP_COMMANDS: &str = "stop-commands";

/// The commands the runner knows; any other `::name::` line is plain output.
const COMMANDS: &[&str] = &[
    STOP_COMMANDS,
    "set-env",
    "set-output",
    "save-state",
    "add-mask",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "debug",
    "warning",
    "error",
    "notice",
    "group",
    "endgroup",
    "echo",
];

/// Commands whose own line is never echoed (they may carry secrets or are shown otherwise).
const OMIT_ECHO: &[&str] = &["add-mask", "debug", "warning", "error", "notice"];

/// Which syntax a command was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandSyntax {
    /// `::name k=v,k=v::data`
    V2,
    /// `##[name k=v;k=v]data`
    Legacy,
}

/// One parsed workflow command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// As written; compare it case-insensitively.
    pub name: String,
    /// In order of first appearance; keys are case-insensitive (a repeated key replaces the
    /// value), and properties with an empty key or value are dropped.
    pub properties: Vec<(String, String)>,
    /// Unescaped; empty when there is none.
    pub data: String,
    pub syntax: CommandSyntax,
}

impl Command {
    /// The value of a property, by case-insensitive key.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| eq_ignore_case(k, key))
            .map(|(_, v)| v.as_str())
    }

    fn set_property(&mut self, key: &str, value: String) {
        match self
            .properties
            .iter_mut()
            .find(|(k, _)| eq_ignore_case(k, key))
        {
            Some((_, v)) => *v = value,
            None => self.properties.push((key.to_owned(), value)),
        }
    }

    fn remove_property(&mut self, key: &str) {
        self.properties.retain(|(k, _)| !eq_ignore_case(k, key));
    }

    fn is(&self, name: &str) -> bool {
        eq_ignore_case(&self.name, name)
    }
}

/// Parses a workflow command of any name: `::name k=v,...::data` first, then the legacy
/// `##[name k=v;...]data`. `None` when the line is not a command.
pub fn parse_command(line: &str) -> Option<Command> {
    parse_registered(line, &|_| true)
}

/// Parses a command whose name `is_registered` accepts. As in the runner, a v2 line with an
/// unknown name may still hold a legacy command.
fn parse_registered(line: &str, is_registered: &dyn Fn(&str) -> bool) -> Option<Command> {
    parse_v2(line, is_registered).or_else(|| parse_legacy(line, is_registered))
}

fn parse_v2(line: &str, is_registered: &dyn Fn(&str) -> bool) -> Option<Command> {
    let rest = line.trim_start().strip_prefix("::")?;
    let end = rest.find("::")?;
    let info = &rest[..end];
    let (name, properties) = split_info(info, is_registered)?;
    let mut command = Command {
        name: name.to_owned(),
        properties: Vec::new(),
        data: unescape(&rest[end + 2..], DATA_ESCAPES),
        syntax: CommandSyntax::V2,
    };
    if let Some(properties) = properties {
        for property in properties.trim().split(',') {
            if let Some((key, value)) = split_property(property) {
                command.set_property(key, unescape(value, PROPERTY_ESCAPES));
            }
        }
    }
    Some(command)
}

fn parse_legacy(line: &str, is_registered: &dyn Fn(&str) -> bool) -> Option<Command> {
    let start = line.find("##[")? + 3;
    let end = start + line[start..].find(']')?;
    let (name, properties) = split_info(&line[start..end], is_registered)?;
    let mut command = Command {
        name: name.to_owned(),
        properties: Vec::new(),
        data: unescape(&line[end + 1..], LEGACY_ESCAPES),
        syntax: CommandSyntax::Legacy,
    };
    if let Some(properties) = properties {
        for property in properties.split(';') {
            if let Some((key, value)) = split_property(property) {
                command.set_property(key, unescape(value, LEGACY_ESCAPES));
            }
        }
    }
    Some(command)
}

/// `name k=v...` into the name and the property text.
fn split_info<'a>(
    info: &'a str,
    is_registered: &dyn Fn(&str) -> bool,
) -> Option<(&'a str, Option<&'a str>)> {
    let (name, properties) = match info.split_once(' ') {
        Some((name, properties)) => (name, Some(properties)),
        None => (info, None),
    };
    (!name.is_empty() && is_registered(name)).then_some((name, properties))
}

/// `key=value`; like .NET's `Split('=', 2, RemoveEmptyEntries)`, leading `=` are skipped and
/// a pair needs a non-empty key and value.
fn split_property(property: &str) -> Option<(&str, &str)> {
    let (key, value) = property.trim_start_matches('=').split_once('=')?;
    (!key.is_empty() && !value.is_empty()).then_some((key, value))
}

const DATA_ESCAPES: &[(&str, &str)] = &[("%0D", "\r"), ("%0A", "\n"), ("%25", "%")];
const PROPERTY_ESCAPES: &[(&str, &str)] = &[
    ("%0D", "\r"),
    ("%0A", "\n"),
    ("%3A", ":"),
    ("%2C", ","),
    ("%25", "%"),
];
const LEGACY_ESCAPES: &[(&str, &str)] = &[
    ("%3B", ";"),
    ("%0D", "\r"),
    ("%0A", "\n"),
    ("%5D", "]"),
    ("%25", "%"),
];

/// Replaces each escape in turn, `%25` last, so `%250A` gives `%0A` (decoded once).
fn unescape(text: &str, escapes: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    if !text.contains('%') {
        return out;
    }
    for (escape, plain) in escapes {
        if out.contains(escape) {
            out = out.replace(escape, plain);
        }
    }
    out
}

/// .NET's `OrdinalIgnoreCase`, near enough.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// .NET's `bool.TryParse`: `true`/`false`, any case, surrounding whitespace allowed.
fn parse_dotnet_bool(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// The runner's `StringUtil.ConvertToBoolean`: `1`, `true`, `$true`.
fn parse_runner_bool(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "$true")
}

/// How a processor starts, from the step's environment and the job's debug setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandSettings {
    /// Echo command lines into the log. On from the start when step debug logging is on
    /// (`ACTIONS_STEP_DEBUG`).
    pub echo: bool,
    /// `ACTIONS_ALLOW_UNSECURE_COMMANDS` is `true`: `set-env` and `add-path` work again.
    pub allow_unsecure_commands: bool,
    /// `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` is `1`/`true`: any `stop-commands` token.
    pub allow_unsecure_stop_tokens: bool,
    /// The workspace directory; annotation file paths inside it are made relative to it.
    pub workspace: Option<String>,
}

impl CommandSettings {
    /// Reads the two opt-in variables from the step's environment (the `env` context; the
    /// runner may also pass its own process environment).
    pub fn from_env<'a>(
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
        step_debug: bool,
    ) -> Self {
        let mut settings = Self {
            echo: step_debug,
            ..Self::default()
        };
        for (name, value) in env {
            match name {
                "ACTIONS_ALLOW_UNSECURE_COMMANDS" => {
                    settings.allow_unsecure_commands |= parse_dotnet_bool(value);
                }
                "ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS" => {
                    settings.allow_unsecure_stop_tokens |= parse_runner_bool(value);
                }
                _ => {}
            }
        }
        settings
    }
}

/// What the log shows for one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Show {
    /// The line as printed.
    Line,
    /// Nothing.
    Nothing,
    /// This text instead (`::add-mask::***` when echo is on).
    Text(String),
}

/// Something a line asks the runner to do. Apply the effects in order, and before writing the
/// line itself (an `AddMask` must mask the line that carries it).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Record an annotation (`::error`, `::warning`, `::notice`, or the runner's own).
    Annotation(Annotation),
    /// Register this value with [`Masker::add_mask`](crate::mask::Masker::add_mask).
    AddMask(String),
    /// `::group::title`.
    GroupStart(String),
    /// `::endgroup::`.
    GroupEnd,
    /// A debug message (`::debug::`, or the runner's own), shown with step debug logging.
    Debug(String),
    /// `::echo::on|off` changed the echo setting.
    EchoChanged(bool),
    /// The step's result becomes failure when it ends (the step keeps running). The reason
    /// was also given as an error annotation.
    StepFailed(String),
    /// `::set-output name=N::V` (deprecated on GitHub, still honoured there).
    SetOutput { name: String, value: String },
    /// `::save-state name=N::V` (deprecated on GitHub, still honoured there).
    SaveState { name: String, value: String },
    /// `::set-env name=N::V`, only with `ACTIONS_ALLOW_UNSECURE_COMMANDS`.
    SetEnv { name: String, value: String },
    /// `::add-path::dir`, only with `ACTIONS_ALLOW_UNSECURE_COMMANDS`.
    AddPath(String),
    /// `::add-matcher::path/to/matcher.json`.
    AddMatcher(String),
    /// `::remove-matcher owner=O::` or `::remove-matcher::path`.
    RemoveMatcher {
        owner: Option<String>,
        file: Option<String>,
    },
}

/// What one output line amounts to.
#[derive(Clone, Debug, PartialEq)]
pub struct LineOutcome {
    /// What the log shows for the line.
    pub show: Show,
    /// The line was taken as a command (not plain output).
    pub command: bool,
    pub effects: Vec<Effect>,
}

impl LineOutcome {
    fn plain() -> Self {
        Self {
            show: Show::Line,
            command: false,
            effects: Vec::new(),
        }
    }
}

/// The workflow-command state of one step: echo, `stop-commands`, and the telemetry the
/// runner would report.
#[derive(Clone, Debug, Default)]
pub struct CommandProcessor {
    settings: CommandSettings,
    echo: bool,
    /// While commands are stopped: the token that resumes them.
    stop_token: Option<String>,
    telemetry: Vec<String>,
    deprecated_set_output: bool,
    deprecated_save_state: bool,
}

impl CommandProcessor {
    pub fn new(settings: CommandSettings) -> Self {
        Self {
            echo: settings.echo,
            settings,
            ..Self::default()
        }
    }

    /// Whether command lines are echoed into the log.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// Whether commands are stopped (`::stop-commands::token` until `::token::`).
    pub fn is_stopped(&self) -> bool {
        self.stop_token.is_some()
    }

    /// Telemetry messages, as the runner records them for the job (deprecated commands used,
    /// invalid stop tokens).
    pub fn telemetry(&self) -> &[String] {
        &self.telemetry
    }

    /// A step used `::set-output`.
    pub fn used_set_output(&self) -> bool {
        self.deprecated_set_output
    }

    /// A step used `::save-state`.
    pub fn used_save_state(&self) -> bool {
        self.deprecated_save_state
    }

    /// Processes one line of output (without its line terminator).
    pub fn process_line(&mut self, line: &str) -> LineOutcome {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !may_hold_command(line) {
            return LineOutcome::plain();
        }
        let stop_token = self.stop_token.as_deref();
        let is_registered = |name: &str| {
            COMMANDS.iter().any(|c| eq_ignore_case(c, name))
                || stop_token.is_some_and(|t| eq_ignore_case(t, name))
        };
        let Some(command) = parse_registered(line, &is_registered) else {
            return LineOutcome::plain();
        };

        if let Some(token) = &self.stop_token {
            // GitHub never resumes on an empty token (only allowed with the opt-in).
            if !token.is_empty() && eq_ignore_case(&command.name, token) {
                self.stop_token = None;
                return LineOutcome {
                    show: Show::Line,
                    command: true,
                    effects: vec![Effect::Debug("Resume processing commands".to_owned())],
                };
            }
            return LineOutcome::plain();
        }

        if command.is(STOP_COMMANDS) {
            return self.stop_commands(command);
        }

        let omit_echo = OMIT_ECHO.iter().any(|c| command.is(c));
        let mut outcome = LineOutcome {
            show: if self.echo && !omit_echo {
                Show::Line
            } else {
                Show::Nothing
            },
            command: true,
            effects: Vec::new(),
        };
        if let Err(message) = self.run(command.clone(), &mut outcome) {
            let shown = if omit_echo {
                command.name.as_str()
            } else {
                line
            };
            outcome
                .effects
                .push(Effect::Annotation(error_annotation(message)));
            outcome.effects.push(Effect::StepFailed(format!(
                "Unable to process command '{shown}' successfully."
            )));
        }
        outcome
    }

    fn stop_commands(&mut self, command: Command) -> LineOutcome {
        let token = command.data;
        let invalid = token.is_empty()
            || COMMANDS.iter().any(|c| eq_ignore_case(c, &token))
            || eq_ignore_case(&token, "pause-logging");
        if invalid {
            self.telemetry
                .push(format!("Invoked ::stopCommand:: with token: [{token}]"));
            if !self.settings.allow_unsecure_stop_tokens {
                return LineOutcome {
                    show: Show::Nothing,
                    command: true,
                    effects: vec![
                        Effect::Annotation(error_annotation(STOP_TOKEN_REFUSED.to_owned())),
                        Effect::StepFailed(STOP_TOKEN_REFUSED.to_owned()),
                    ],
                };
            }
        }
        let mut effects = Vec::new();
        // The runner masks the token only when it is longer than 6 characters.
        if token.encode_utf16().count() > 6 {
            effects.push(Effect::AddMask(token.clone()));
        }
        effects.push(Effect::Debug(
            "Paused processing commands until the token you called ::stopCommands:: with is received"
                .to_owned(),
        ));
        self.stop_token = Some(token);
        LineOutcome {
            show: Show::Line,
            command: true,
            effects,
        }
    }

    /// Runs a known command other than `stop-commands`. An error fails the step.
    fn run(&mut self, mut command: Command, outcome: &mut LineOutcome) -> Result<(), String> {
        let effects = &mut outcome.effects;
        let name = command.name.to_ascii_lowercase();
        match name.as_str() {
            "echo" => match command.data.trim().to_uppercase().as_str() {
                "ON" => {
                    self.echo = true;
                    effects.push(Effect::EchoChanged(true));
                    effects.push(Effect::Debug(
                        "Setting echo command value to 'on'".to_owned(),
                    ));
                }
                "OFF" => {
                    self.echo = false;
                    effects.push(Effect::EchoChanged(false));
                    effects.push(Effect::Debug(
                        "Setting echo command value to 'off'".to_owned(),
                    ));
                }
                _ => {
                    return Err(format!(
                        "Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: '{}'.",
                        command.data
                    ));
                }
            },
            "add-mask" => {
                if command.data.trim().is_empty() {
                    effects.push(Effect::Annotation(annotation(
                        AnnotationLevel::Warning,
                        "Can't add secret mask for empty string in ##[add-mask] command."
                            .to_owned(),
                    )));
                } else {
                    if self.echo {
                        outcome.show = Show::Text("::add-mask::***".to_owned());
                    }
                    effects.push(Effect::AddMask(command.data));
                }
            }
            "group" => effects.push(Effect::GroupStart(command.data)),
            "endgroup" => effects.push(Effect::GroupEnd),
            "debug" => effects.push(Effect::Debug(command.data)),
            "warning" | "error" | "notice" => {
                let level = match name.as_str() {
                    "error" => AnnotationLevel::Error,
                    "warning" => AnnotationLevel::Warning,
                    _ => AnnotationLevel::Notice,
                };
                for message in validate_position(&mut command) {
                    effects.push(Effect::Debug(message));
                }
                effects.push(Effect::Annotation(self.issue(level, command)));
            }
            "set-output" | "save-state" => {
                let (file, first) = if name == "set-output" {
                    (
                        "GITHUB_OUTPUT",
                        !std::mem::replace(&mut self.deprecated_set_output, true),
                    )
                } else {
                    (
                        "GITHUB_STATE",
                        !std::mem::replace(&mut self.deprecated_save_state, true),
                    )
                };
                if first {
                    self.telemetry.push(format!("DeprecatedCommand: {name}"));
                }
                let Some(key) = command.property("name").map(str::to_owned) else {
                    return Err(format!(
                        "Required field 'name' is missing in ##[{name}] command."
                    ));
                };
                effects.push(Effect::Annotation(annotation(
                    AnnotationLevel::Warning,
                    format!(
                        "The `{name}` command is deprecated and will be disabled soon. Please upgrade to using Environment Files (`${file}`). For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
                    ),
                )));
                let value = command.data.clone();
                effects.push(if name == "set-output" {
                    Effect::SetOutput { name: key, value }
                } else {
                    Effect::SaveState { name: key, value }
                });
            }
            "set-env" => {
                if !self.settings.allow_unsecure_commands {
                    return Err(UNSECURE_COMMAND_DISABLED.replace("{command}", "set-env"));
                }
                let Some(env_name) = command.property("name").map(str::to_owned) else {
                    return Err("Required field 'name' is missing in ##[set-env] command.".into());
                };
                if crate::file_command::is_blocked_env(&env_name) {
                    effects.push(Effect::Annotation(error_annotation(
                        "Can't update NODE_OPTIONS environment variable using ::set-env:: command."
                            .to_owned(),
                    )));
                } else {
                    effects.push(Effect::Debug(format!("{env_name}='{}'", command.data)));
                    effects.push(Effect::SetEnv {
                        name: env_name,
                        value: command.data,
                    });
                }
            }
            "add-path" => {
                if !self.settings.allow_unsecure_commands {
                    return Err(UNSECURE_COMMAND_DISABLED.replace("{command}", "add-path"));
                }
                if command.data.is_empty() {
                    return Err("Required value 'path' is missing in ##[add-path] command.".into());
                }
                effects.push(Effect::AddPath(command.data));
            }
            "add-matcher" => {
                if command.data.is_empty() {
                    effects.push(Effect::Annotation(annotation(
                        AnnotationLevel::Warning,
                        "File path must be specified.".to_owned(),
                    )));
                } else {
                    effects.push(Effect::AddMatcher(command.data));
                }
            }
            "remove-matcher" => {
                let owner = command.property("owner").map(str::to_owned);
                let file = (!command.data.is_empty()).then_some(command.data);
                let warning = match (&owner, &file) {
                    (Some(_), Some(_)) => Some(
                        "Either specify an owner name or a file path in ##[remove-matcher] command. Both values cannot be set.",
                    ),
                    (None, None) => Some(
                        "Either an owner name or a file path must be specified in ##[remove-matcher] command.",
                    ),
                    _ => None,
                };
                match warning {
                    Some(w) => effects.push(Effect::Annotation(annotation(
                        AnnotationLevel::Warning,
                        w.to_owned(),
                    ))),
                    None => effects.push(Effect::RemoveMatcher { owner, file }),
                }
            }
            // Every registered command has an arm above.
            _ => {}
        }
        Ok(())
    }

    /// The annotation of a validated `::error`/`::warning`/`::notice`.
    fn issue(&self, level: AnnotationLevel, command: Command) -> Annotation {
        let number = |key: &str| {
            command
                .property(key)
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        let file = command.property("file").map(|file| {
            let relative = self.settings.workspace.as_deref().and_then(|ws| {
                let ws = ws.trim_end_matches(['/', '\\']);
                file.strip_prefix(ws)
                    .and_then(|rest| rest.strip_prefix(['/', '\\']))
            });
            match relative {
                Some(rel) if !rel.is_empty() => rel.replace('\\', "/"),
                _ => file.to_owned(),
            }
        });
        Annotation {
            level,
            title: command.property("title").map(str::to_owned),
            file,
            line: number("line"),
            end_line: number("endLine"),
            column: number("col"),
            end_column: number("endColumn"),
            message: command.data,
        }
    }
}

fn annotation(level: AnnotationLevel, message: String) -> Annotation {
    Annotation {
        level,
        message,
        title: None,
        file: None,
        line: None,
        end_line: None,
        column: None,
        end_column: None,
    }
}

fn error_annotation(message: String) -> Annotation {
    annotation(AnnotationLevel::Error, message)
}

/// Corrects `line`/`endLine`/`col`/`endColumn` of an issue command as the runner does, and
/// returns the debug messages explaining each correction.
fn validate_position(command: &mut Command) -> Vec<String> {
    let mut messages = Vec::new();
    let name = command.name.clone();
    let get = |c: &Command, key: &str| c.property(key).map(str::to_owned);
    // .NET's int.TryParse; a failed parse reads as 0, which the comparisons below rely on.
    let parse = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<i32>().ok());
    let mut line = get(command, "line");
    let end_line = get(command, "endLine");
    let column = get(command, "col");
    let end_column = get(command, "endColumn");
    let line_number = parse(&line).unwrap_or(0);
    let end_line_number = parse(&end_line).unwrap_or(0);
    let column_number = parse(&column).unwrap_or(0);
    let end_column_number = parse(&end_column).unwrap_or(0);
    let mut has_start_line = parse(&line).is_some();
    let has_end_line = parse(&end_line).is_some();
    let mut has_start_column = parse(&column).is_some();
    let has_end_column = parse(&end_column).is_some();
    let has_column = has_start_column || has_end_column;

    if has_end_line && !has_start_line {
        messages.push(format!(
            "Invalid {name} command value. 'endLine' can only be set if 'line' is provided"
        ));
        command.set_property("line", end_line.clone().unwrap_or_default());
        has_start_line = true;
        line = end_line.clone();
    }
    if has_end_column && !has_start_column {
        messages.push(format!(
            "Invalid {name} command value. 'endColumn' can only be set if 'col' is provided"
        ));
        command.set_property("col", end_column.clone().unwrap_or_default());
        has_start_column = true;
    }
    if !has_start_line && has_column {
        messages.push(format!("Invalid {name} command value. 'col' and 'endColumn' can only be set if 'line' value is provided."));
        command.remove_property("col");
        command.remove_property("endColumn");
    }
    if has_end_line && line != end_line && has_column {
        messages.push(format!("Invalid {name} command value. 'col' and 'endColumn' cannot be set if 'line' and 'endLine' are different values."));
        command.remove_property("col");
        command.remove_property("endColumn");
    }
    if has_start_line && has_end_line && end_line_number < line_number {
        messages.push(format!(
            "Invalid {name} command value. 'endLine' cannot be less than 'line'."
        ));
        command.remove_property("line");
        command.remove_property("endLine");
    }
    if has_start_column && has_end_column && end_column_number < column_number {
        messages.push(format!(
            "Invalid {name} command value. 'endColumn' cannot be less than 'col'."
        ));
        command.remove_property("col");
        command.remove_property("endColumn");
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{EncoderSet, Masker};
    use serde_json::Value;

    const ORACLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/oracles/runner-workflow-commands.json"
    );

    fn oracle() -> Value {
        let text = std::fs::read_to_string(ORACLE).expect("oracle file is readable");
        serde_json::from_str(&text).expect("oracle file is JSON")
    }

    fn registered(case: &Value) -> Vec<String> {
        case["registered_commands"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn parse_for(case: &Value) -> Option<Command> {
        let names = registered(case);
        let line = case["line"].as_str().unwrap_or_default();
        let parsed = parse_registered(line, &|n| names.iter().any(|r| eq_ignore_case(r, n)));
        // The any-name parser agrees when the command is registered.
        assert_eq!(
            parsed,
            parse_command(line).filter(|c| names.iter().any(|r| c.is(r)))
        );
        parsed
    }

    fn parse_case(case: &Value) -> Result<(), String> {
        let expected = &case["expected"];
        let parsed = parse_for(case);
        let want_parsed = expected["parsed"].as_bool().unwrap_or(false);
        let Some(command) = parsed else {
            return if want_parsed {
                Err("not parsed".into())
            } else {
                Ok(())
            };
        };
        if !want_parsed {
            return Err(format!("parsed as {command:?}"));
        }
        if let Some(name) = expected["command"].as_str()
            && !command.is(name)
        {
            return Err(format!("command {:?}", command.name));
        }
        let properties: Vec<(String, String)> = expected["properties"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap_or_default().to_owned(),
                            p[1].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if command.properties != properties {
            return Err(format!("properties {:?}", command.properties));
        }
        if let Some(data) = expected["data"].as_str()
            && !data.is_empty()
            && !command.data.is_empty()
            && !eq_ignore_case(data, &command.data)
        {
            return Err(format!("data {:?}", command.data));
        }
        Ok(())
    }

    fn issue_position_case(case: &Value) -> Result<(), String> {
        let Some(mut command) = parse_for(case) else {
            return Err("not parsed".into());
        };
        for (key, value) in case["after_parse"].as_object().into_iter().flatten() {
            if command.property(key) != value.as_str() {
                return Err(format!("after parse {key} = {:?}", command.property(key)));
            }
        }
        validate_position(&mut command);
        let after = &case["after_validation"];
        for (key, value) in after["present"].as_object().into_iter().flatten() {
            if command.property(key) != value.as_str() {
                return Err(format!("{key} = {:?}, want {value}", command.property(key)));
            }
        }
        for key in after["absent"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if command.property(key).is_some() {
                return Err(format!("{key} is still set"));
            }
        }
        for pair in after["equal"].as_array().into_iter().flatten() {
            let (a, b) = (
                pair[0].as_str().unwrap_or_default(),
                pair[1].as_str().unwrap_or_default(),
            );
            if command.property(a).is_none() || command.property(a) != command.property(b) {
                return Err(format!("{a} != {b}: {:?}", command.properties));
            }
        }
        // The annotation carries the corrected numbers.
        let mut processor = CommandProcessor::default();
        let outcome = processor.process_line(case["line"].as_str().unwrap_or_default());
        let Some(Effect::Annotation(annotation)) = outcome.effects.last() else {
            return Err(format!("no annotation: {outcome:?}"));
        };
        let number = |key: &str| command.property(key).and_then(|v| v.parse::<u32>().ok());
        if (annotation.line, annotation.column) != (number("line"), number("col")) {
            return Err(format!("annotation {annotation:?}"));
        }
        Ok(())
    }

    fn sequence_case(case: &Value) -> Result<(), String> {
        let env: Vec<(&str, &str)> = case["env"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
            .collect();
        let step_debug = case["initial"]["variables"]["ACTIONS_STEP_DEBUG"]
            .as_str()
            .is_some_and(parse_runner_bool);
        let mut processor = CommandProcessor::new(CommandSettings::from_env(env, step_debug));
        if let Some(echo) = case["initial"]["echo_on"].as_bool()
            && processor.echo() != echo
        {
            return Err(format!("initial echo {}", processor.echo()));
        }
        let mut masker = Masker::with_encoders(EncoderSet::JsonAndUri);
        for (i, step) in case["steps"].as_array().into_iter().flatten().enumerate() {
            let line = step["line"].as_str().unwrap_or_default();
            let outcome = processor.process_line(line);
            for effect in &outcome.effects {
                if let Effect::AddMask(value) = effect {
                    masker.add_mask(value);
                }
            }
            let failed = outcome
                .effects
                .iter()
                .any(|e| matches!(e, Effect::StepFailed(_)));
            let context = format!("step {i} {line:?}: {outcome:?}");
            if step["throws"].as_bool() == Some(true) {
                if !failed || processor.is_stopped() {
                    return Err(format!("{context}: expected the command to be refused"));
                }
                continue;
            }
            if let Some(processed) = step["processed"].as_bool()
                && outcome.command != processed
            {
                return Err(format!("{context}: processed != {processed}"));
            }
            let then = &step["then"];
            if let Some(echo) = then["echo_on"].as_bool()
                && processor.echo() != echo
            {
                return Err(format!("{context}: echo {}", processor.echo()));
            }
            match then["command_result"].as_str() {
                Some("Failed") if !failed => return Err(format!("{context}: not failed")),
                Some("Failed") | None => {}
                Some(other) => return Err(format!("unknown command_result {other}")),
            }
            for (input, masked) in then["masked"].as_object().into_iter().flatten() {
                let actual = masker.mask(input);
                if Some(actual.as_str()) != masked.as_str() {
                    return Err(format!("{context}: {input:?} masked as {actual:?}"));
                }
            }
            if let Some(telemetry) = then["telemetry"].as_array() {
                let want: Vec<&str> = telemetry.iter().filter_map(Value::as_str).collect();
                if processor.telemetry() != want.as_slice() {
                    return Err(format!("{context}: telemetry {:?}", processor.telemetry()));
                }
            }
            if let Some(flag) = then["deprecated_set_output"].as_bool()
                && processor.used_set_output() != flag
            {
                return Err(format!("{context}: deprecated_set_output"));
            }
            if let Some(flag) = then["deprecated_save_state"].as_bool()
                && processor.used_save_state() != flag
            {
                return Err(format!("{context}: deprecated_save_state"));
            }
        }
        Ok(())
    }

    #[test]
    fn every_workflow_command_oracle_case_passes() {
        let oracle = oracle();
        let mut total = 0;
        let mut failures = Vec::new();
        let kinds: [(&str, CaseRunner); 3] = [
            ("parse_cases", parse_case),
            ("issue_position_cases", issue_position_case),
            ("sequence_cases", sequence_case),
        ];
        for (kind, run) in kinds {
            for case in oracle[kind].as_array().into_iter().flatten() {
                total += 1;
                if let Err(why) = run(case) {
                    failures.push(format!("{kind} {}: {why}", case["id"]));
                }
            }
        }
        let passed = total - failures.len();
        println!(
            "runner-workflow-commands.json: {passed}/{total} passed ({:.1}%)",
            100.0 * passed as f64 / total as f64
        );
        assert_eq!(total, 40, "the oracle has 40 cases");
        assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    }

    type CaseRunner = fn(&Value) -> Result<(), String>;

    fn process(processor: &mut CommandProcessor, line: &str) -> LineOutcome {
        processor.process_line(line)
    }

    #[test]
    fn plain_and_unknown_lines_are_output() {
        let mut p = CommandProcessor::default();
        for line in [
            "hello",
            "::unknown::x",
            "a::b",
            "   >>> ::warning::x",
            "##[nope]",
        ] {
            assert_eq!(process(&mut p, line), LineOutcome::plain(), "{line}");
        }
    }

    #[test]
    fn error_command_becomes_an_annotation_relative_to_the_workspace() {
        let mut p = CommandProcessor::new(CommandSettings {
            workspace: Some("/work/repo".into()),
            ..CommandSettings::default()
        });
        let outcome = process(
            &mut p,
            "::error file=/work/repo/src/a.rs,line=3,col=5,endColumn=9,title=Bad%2C bad::it broke%0Ahere",
        );
        assert_eq!(outcome.show, Show::Nothing);
        assert_eq!(
            outcome.effects,
            vec![Effect::Annotation(Annotation {
                level: AnnotationLevel::Error,
                message: "it broke\nhere".into(),
                title: Some("Bad, bad".into()),
                file: Some("src/a.rs".into()),
                line: Some(3),
                end_line: None,
                column: Some(5),
                end_column: Some(9),
            })]
        );
    }

    #[test]
    fn set_env_is_refused_with_githubs_message_and_fails_the_step() {
        let mut p = CommandProcessor::default();
        let outcome = process(&mut p, "::set-env name=FOO::bar");
        assert!(outcome.command);
        let [Effect::Annotation(a), Effect::StepFailed(_)] = outcome.effects.as_slice() else {
            panic!("{outcome:?}");
        };
        assert_eq!(a.level, AnnotationLevel::Error);
        assert!(a.message.starts_with("The `set-env` command is disabled."));
        assert!(a.message.contains("ACTIONS_ALLOW_UNSECURE_COMMANDS"));
    }

    #[test]
    fn set_env_and_add_path_work_with_the_unsecure_opt_in() {
        let settings =
            CommandSettings::from_env([("ACTIONS_ALLOW_UNSECURE_COMMANDS", "true")], false);
        let mut p = CommandProcessor::new(settings);
        let outcome = process(&mut p, "::set-env name=FOO::bar");
        assert!(outcome.effects.contains(&Effect::SetEnv {
            name: "FOO".into(),
            value: "bar".into()
        }));
        let outcome = process(&mut p, "::add-path::/opt/bin");
        assert_eq!(outcome.effects, vec![Effect::AddPath("/opt/bin".into())]);
        let outcome = process(&mut p, "::set-env name=node_options::--x");
        assert!(matches!(
            outcome.effects.as_slice(),
            [Effect::Annotation(_)]
        ));
    }

    #[test]
    fn set_output_works_with_a_deprecation_warning_naming_github_output() {
        let mut p = CommandProcessor::default();
        let outcome = process(&mut p, "::set-output name=x::1");
        let [Effect::Annotation(a), Effect::SetOutput { name, value }] = outcome.effects.as_slice()
        else {
            panic!("{outcome:?}");
        };
        assert_eq!(a.level, AnnotationLevel::Warning);
        assert!(a.message.contains("$GITHUB_OUTPUT"));
        assert_eq!((name.as_str(), value.as_str()), ("x", "1"));
        let outcome = process(&mut p, "::save-state name=x::1");
        let [Effect::Annotation(a), Effect::SaveState { .. }] = outcome.effects.as_slice() else {
            panic!("{outcome:?}");
        };
        assert!(a.message.contains("$GITHUB_STATE"));
        let outcome = process(&mut p, "::set-output::no name");
        assert!(
            outcome
                .effects
                .iter()
                .any(|e| matches!(e, Effect::StepFailed(_)))
        );
    }

    #[test]
    fn add_mask_is_never_echoed_in_clear() {
        let mut p = CommandProcessor::new(CommandSettings {
            echo: true,
            ..CommandSettings::default()
        });
        let outcome = process(&mut p, "::add-mask::s3cret");
        assert_eq!(outcome.show, Show::Text("::add-mask::***".into()));
        assert_eq!(outcome.effects, vec![Effect::AddMask("s3cret".into())]);
        let outcome = process(&mut p, "::add-mask::   ");
        assert!(
            matches!(outcome.effects.as_slice(), [Effect::Annotation(a)] if a.level == AnnotationLevel::Warning)
        );
    }

    #[test]
    fn groups_and_debug() {
        let mut p = CommandProcessor::default();
        assert_eq!(
            process(&mut p, "::group::Build").effects,
            vec![Effect::GroupStart("Build".into())]
        );
        assert_eq!(
            process(&mut p, "::endgroup::").effects,
            vec![Effect::GroupEnd]
        );
        assert_eq!(
            process(&mut p, "::debug::x=1").effects,
            vec![Effect::Debug("x=1".into())]
        );
    }

    #[test]
    fn stop_commands_suspends_everything_until_the_token() {
        let mut p = CommandProcessor::default();
        assert!(process(&mut p, "::stop-commands::pause123").command);
        assert_eq!(
            process(&mut p, "::error::not an error"),
            LineOutcome::plain()
        );
        assert_eq!(process(&mut p, "::add-mask::x"), LineOutcome::plain());
        let resumed = process(&mut p, "::PAUSE123::");
        assert!(resumed.command);
        assert_eq!(resumed.show, Show::Line);
        assert!(process(&mut p, "::debug::again").command);
    }
}
