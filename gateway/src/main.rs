//! The `omnigate` binary: parses the command line and dispatches. `serve` runs the gateway
//! (assembled by `omnigate::startup`), `openapi` prints the spec, `topics` the mapped
//! topics, `trigger` sends a signed sample, `secrets rewrap` re-seals stored secrets,
//! `forward` brings a plugin's events to a receiver on the developer's machine.

use clap::Parser;
use omnigate::config::{Cli, Command, SecretsCommand, Settings};
use omnigate::startup::Gateway;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    omnigate::telemetry::init(cli.log_format, &cli.log);
    match cli.command {
        Command::Openapi => {
            let spec = omnigate::http::openapi_document();
            match serde_json::to_string_pretty(&spec) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Trigger(args) => {
            if args.list {
                print!("{}", omnigate::trigger::list());
                return ExitCode::SUCCESS;
            }
            if args.show {
                return match omnigate::trigger::show(&args) {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            match actix_web::rt::System::new().block_on(omnigate::trigger::run(&args)) {
                Ok((status, body)) => {
                    println!("{status} {body}");
                    if (200..300).contains(&status) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Forward(args) => {
            let run = async {
                let (secret, note) = omnigate::forward::secret(&args)?;
                if let Some(note) = note {
                    println!("{note}");
                }
                let stop = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                omnigate::forward::run(&args, &secret, |line| println!("{line}"), stop).await
            };
            match actix_web::rt::System::new().block_on(run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Topics => {
            print!("{}", omnigate::normalize::mappings_table());
            ExitCode::SUCCESS
        }
        Command::Secrets(SecretsCommand::Rewrap(settings)) => {
            let rewrapped = actix_web::rt::System::new()
                .block_on(omnigate::store::sealed::rewrap_with_settings(&settings));
            match rewrapped {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(settings) => match actix_web::rt::System::new().block_on(serve(*settings)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(settings: Settings) -> Result<(), omnigate::Error> {
    let bind = settings.bind;
    let gateway = Gateway::build(settings).await?;
    if let Some(token) = gateway.generated_admin_token() {
        // Printed once, on stdout, so it can be captured; never logged.
        println!("Generated admin token (memory store only): {token}");
    }
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|e| omnigate::Error::Config(format!("cannot listen on {bind}: {e}")))?;
    let running = gateway.serve(listener)?;
    let addr = running.addr();
    tracing::info!(%addr, "omnigate listening; docs at http://{addr}/docs/");
    running.run().await
}
