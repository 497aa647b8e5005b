//! `tasklease ui`: the live web board (see the `tasklease-web` crate). This module
//! only checks the arguments, opens the store and says where to look.
//!
//! The one line on stdout names the address and, when writes are on and the token
//! was not given, the write token: the only place it is ever printed.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use tasklease::open;
use tasklease::{AgentId, Error, Result, identity};
use tasklease_web::{Config, Secret, guard};

use super::Ctx;
use crate::args::{Cli, UiArgs};
use crate::exit::Exit;

pub fn run(cli: &Cli, a: &UiArgs) -> ExitCode {
    match serve(cli, a) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            crate::output::note!("tasklease ui: {e}");
            Exit::of(&e).into()
        }
    }
}

/// `IP:PORT`, `localhost:PORT` or `PORT`.
fn listen_addr(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port = s.strip_prefix("localhost:").unwrap_or(s);
    port.parse::<u16>()
        .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
        .map_err(|_| {
            Error::invalid(
                "listen",
                format!(
                    "{} is not an address to serve on; allowed: IP:PORT (127.0.0.1:7777, \
                     [::1]:7777, or 0.0.0.0:7777 with --token), localhost:PORT, or PORT",
                    tasklease::text::quote(s)
                ),
            )
        })
}

fn serve(cli: &Cli, a: &UiArgs) -> Result<()> {
    let listen = listen_addr(&a.listen)?;
    let secret = a.token.as_deref().map(Secret::given).transpose()?;
    if guard::needs_token(&listen) && secret.is_none() {
        return Err(Error::invalid(
            "listen",
            format!(
                "serving on {listen} reaches beyond this machine, so it needs --token T (a \
                 write token you choose and hand out); or serve on 127.0.0.1"
            ),
        ));
    }
    let agent = match cli.agent.as_deref() {
        Some(a) => AgentId::new(a)?,
        None => identity::generated("ui", std::process::id())?,
    };
    let cx = Ctx { cli };
    let spec = cx.spec()?;
    let options = cx.long_running_options();
    let mut config = Config::new(listen, agent)?;
    config.allow_writes = a.allow_writes;
    config.db_display = spec.display();
    let given = secret.is_some();
    if let Some(s) = secret {
        config.secret = s;
    }
    let line_secret = config.secret.clone();
    let (writes, open_browser) = (a.allow_writes, a.open);
    let db = spec.display();
    tasklease_web::run_blocking(
        move || open::open(&spec, &options),
        config,
        move |addr| {
            let url = format!("http://{addr}/");
            let writes = match (writes, given) {
                (false, _) => "read-only (--allow-writes to change tasks)".to_owned(),
                (true, true) => "writes on, with the token given with --token".to_owned(),
                (true, false) => format!(
                    "writes on; write token {} (forms carry it; scripts send \
                     Authorization: Bearer)",
                    line_secret.expose()
                ),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "tasklease ui: serving {db} at {url} — {writes}; Ctrl-C stops"
            );
            let _ = out.flush();
            if open_browser {
                open_in_browser(&url);
            }
        },
    )
}

/// Starts the system's browser on `url`; a failure is only a note.
fn open_in_browser(url: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    let started = std::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = started {
        crate::output::note!(
            "tasklease ui: could not start a browser ({program}: {e}); open {url}"
        );
    }
}
