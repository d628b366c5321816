//! `stockops users add|list|disable|rotate-password`.

use std::io::BufRead;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{PasswordSource, UsersCommand};
use crate::config::Settings;
use crate::db::provision::Declaration;
use crate::db::scram::Secret;
use crate::db::users::{self, NewUser};
use crate::exit;

pub async fn run(settings: &Settings, cmd: UsersCommand) -> anyhow::Result<u8> {
    let decl = Declaration::embedded()?;
    match cmd {
        UsersCommand::Add(args) => {
            let (password, generated) = password(&args.password)?;
            let user = NewUser {
                name: &args.name,
                group: &args.role,
                reseller: args.reseller.as_deref(),
                supplier: args.supplier.as_deref(),
            };
            users::validate_name(user.name, &decl)?;
            let mut conn = super::connect(settings).await?;
            users::add(&mut conn, &decl, &user, &password).await?;
            tracing::info!(login = user.name, group = user.group, "user created");
            let shown = generated.then(|| password.expose().to_string());
            if args.json {
                let out = serde_json::json!({
                    "name": user.name, "role": user.group,
                    "reseller": user.reseller, "supplier": user.supplier,
                    "password": shown,
                });
                println!("{out}");
            } else {
                println!("created login {} in group {}", user.name, user.group);
                if let Some(p) = shown {
                    println!("password (shown once, store it now): {p}");
                }
            }
        }
        UsersCommand::List(args) => {
            let mut conn = super::connect(settings).await?;
            let rows = users::list(&mut conn, &decl).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut table = Table::new();
                table.load_preset(UTF8_BORDERS_ONLY);
                table.set_header(["name", "group", "login", "partner", "sessions"]);
                for r in rows {
                    let partner = r.reseller.or(r.supplier).unwrap_or_default();
                    let login = if r.can_login { "yes" } else { "disabled" };
                    table.add_row([
                        r.name,
                        r.group,
                        login.into(),
                        partner,
                        r.open_sessions.to_string(),
                    ]);
                }
                println!("{table}");
            }
        }
        UsersCommand::Disable(args) => {
            let mut conn = super::connect(settings).await?;
            let ended = users::disable(&mut conn, &decl, &args.name).await?;
            println!(
                "disabled login {} ({ended} open session(s) ended)",
                args.name
            );
        }
        UsersCommand::Enable(args) => {
            let mut conn = super::connect(settings).await?;
            users::enable(&mut conn, &decl, &args.name).await?;
            println!("enabled login {}", args.name);
        }
        UsersCommand::RotatePassword(args) => {
            let (password, generated) = password(&args.password)?;
            let mut conn = super::connect(settings).await?;
            users::rotate_password(&mut conn, &decl, &args.name, &password).await?;
            println!("password of {} changed", args.name);
            if generated {
                println!("password (shown once, store it now): {}", password.expose());
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// The password: refused from the command line, read from stdin when asked,
/// else generated. Returns whether it was generated (and must be shown).
fn password(source: &PasswordSource) -> anyhow::Result<(Secret, bool)> {
    if source.password.is_some() {
        return Err(exit::usage(
            "refusing a password given on the command line: it would be visible in `ps` and shell history; \
             pipe it with --password-stdin, or leave it out to have one generated and shown once",
        ));
    }
    if !source.password_stdin {
        return Ok((Secret::generate(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let value = line.trim_end_matches(['\r', '\n']).to_string();
    if value.len() < 12 {
        return Err(exit::usage(
            "the password from standard input is shorter than 12 characters",
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(exit::usage(
            "the password from standard input must be printable ASCII without spaces",
        ));
    }
    Ok((Secret::new(value), false))
}
