//! The `scimd` command line: `serve` (the default), `migrate`,
//! `directory create|rotate-key`, `admin-token create`; built with the
//! `tools` feature, also `seed` and `seed-audit`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use scimd::audit::AuditContext;
use scimd::auth::{new_admin_token, new_api_key};
use scimd::config::{DatabaseConfig, LogFormat, ServeConfig};
use scimd::startup::{shutdown_signal, Application};
use scimd::store::{ConnectOptions, Store};

/// jemalloc rather than the system allocator: `malloc`/`free` were 15% of
/// the server's CPU under load, and jemalloc took 5–12% off the CPU per
/// look-up without raising peak RSS (docs/PERFORMANCE.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "scimd", version, about = "A SCIM 2.0 directory server")]
struct Cli {
    #[command(flatten)]
    db: DatabaseConfig,

    /// Log format.
    #[arg(
        long,
        env = "SCIMD_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage directories.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Manage admin tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Print the admin API's OpenAPI document (what `GET /openapi.json`
    /// serves) and exit.
    Openapi,
    /// Load a directory with synthetic users and groups (for measuring
    /// large directories; users are named seed-<n>@example.com, each
    /// linked to an org-level account as a SCIM creation links it).
    #[cfg(feature = "tools")]
    Seed {
        /// The directory to load.
        #[arg(long)]
        directory: Uuid,
        /// Users to add.
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
        /// Number of the first seeded user (to add more to a seeded directory).
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Groups to add.
        #[arg(long, default_value_t = 10_000)]
        groups: u64,
        /// Members per group, drawn from the seeded users.
        #[arg(long, default_value_t = 10)]
        members_per_group: usize,
        /// Also add one group `seed-big` with this many members.
        #[arg(long, default_value_t = 0)]
        big_group: usize,
        /// Grant this many of the added groups (the first) the role `user`
        /// on the product `jira-software` of the site `seed-site`, made
        /// when the organisation has neither.
        #[arg(long, default_value_t = 0)]
        grants: usize,
        /// Make this many of the added groups members of other added
        /// groups, in chains of four (group 1 in group 0, 2 in 1, 3 in 2;
        /// 5 in 4, …).
        #[arg(long, default_value_t = 0)]
        nesting: usize,
    },
    /// Load a directory's audit log with synthetic user events (for
    /// measuring reports over millions of events).
    #[cfg(feature = "tools")]
    #[command(name = "seed-audit", hide = true)]
    SeedAudit {
        /// The directory the events belong to.
        #[arg(long)]
        directory: Uuid,
        /// Events to add.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Distinct users the events are about (seed-<n>@example.com).
        #[arg(long, default_value_t = 100_000)]
        users: u64,
        /// Days before now the events are spread over.
        #[arg(long, default_value_t = 170)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Create a directory and print its base URL and API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Organisation id (default: the default organisation).
        #[arg(long)]
        org: Option<Uuid>,
    },
    /// Issue a new API key for a directory; the old key stops working.
    RotateKey {
        #[arg(long)]
        id: Uuid,
        #[arg(long)]
        org: Option<Uuid>,
    },
}

#[derive(Subcommand)]
enum AdminTokenCommand {
    /// Create an admin token and print it (shown once).
    Create,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli_main()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's allocator gives threads that allocate at the same time arenas of
/// their own, up to eight per core, and memory freed into one arena is
/// not reused by another: the request threads and the database threads
/// raised the server's RSS under load from about 55 MB to over 90 MB that
/// way. Two arenas kept the peak near 55 MB with no measurable cost in
/// CPU per request. `MALLOC_ARENA_MAX`, if set, still decides. Runs
/// before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes an allocator setting, and no other
        // thread is running yet to race with it.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

async fn cli_main() -> ExitCode {
    let cli = Cli::parse();
    scimd::telemetry::init(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", scimd::telemetry::ErrorChain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// Connects to the database; only a server keeps users in memory (the
/// other commands write and exit).
async fn connect(db: &DatabaseConfig, serving: bool) -> Result<Store, Box<dyn std::error::Error>> {
    let opts = ConnectOptions {
        pool_size: db.db_pool_size.unwrap_or(0),
        lookup_statements: db.db_lookup_statements.unwrap_or(0) as usize,
        user_cache_bytes: Some(if serving {
            db.user_cache_mib.saturating_mul(1 << 20)
        } else {
            0
        }),
        ..ConnectOptions::default()
    };
    Ok(Store::connect(&db.database_url, &opts).await?)
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let command = cli.command.unwrap_or(Command::Serve);
    let store = match command {
        // The only command that needs no database.
        Command::Openapi => {
            print!("{}", scimd::http::openapi::json());
            return Ok(());
        }
        _ => connect(&cli.db, matches!(command, Command::Serve)).await?,
    };
    match command {
        Command::Openapi => {}
        Command::Serve => {
            let app = Application::build(&cli.serve, store.clone()).await?;
            if let Some(token) = &app.generated_admin_token {
                eprintln!(
                    "\n  No admin token existed, so one was created. It is shown only this once:\n\n    {token}\n\n  Use it as 'Authorization: Bearer <token>' on /admin/v1. Make more with\n  'scimd admin-token create'.\n"
                );
            }
            tracing::info!(
                addr = %app.local_addr(),
                public_url = app.public_url(),
                "scimd listening"
            );
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            store.migrate().await?;
            eprintln!("migrations applied");
        }
        Command::Directory(cmd) => {
            store.migrate().await?;
            let default_org = store.ensure_default_org().await?.id;
            let public_url = cli.serve.public_url(cli.serve.listen);
            match cmd {
                DirectoryCommand::Create { name, org } => {
                    let key = new_api_key().await?;
                    let dir = store
                        .create_directory(
                            org.unwrap_or(default_org),
                            &name,
                            &key.id,
                            &key.hash,
                            &AuditContext::system("cli"),
                        )
                        .await?;
                    println!("directory: {}", dir.id);
                    println!("base URL:  {public_url}/scim/directory/{}", dir.id);
                    println!("API key:   {}", key.secret);
                    eprintln!("(the API key is shown only this once)");
                }
                DirectoryCommand::RotateKey { id, org } => {
                    let key = new_api_key().await?;
                    store
                        .set_directory_key(
                            org.unwrap_or(default_org),
                            id,
                            &key.id,
                            &key.hash,
                            &AuditContext::system("cli"),
                        )
                        .await?;
                    println!("API key:   {}", key.secret);
                    eprintln!("(the previous key no longer works; running servers notice within --key-cache-seconds)");
                }
            }
        }
        #[cfg(feature = "tools")]
        Command::Seed {
            directory,
            users,
            first,
            groups,
            members_per_group,
            big_group,
            grants,
            nesting,
        } => {
            store.migrate().await?;
            let plan = scimd::store::seed::SeedPlan {
                users,
                first,
                groups,
                members_per_group,
                big_group,
                grants,
                nesting,
            };
            let seeded = store
                .seed(directory, &plan, &AuditContext::system("cli"))
                .await?;
            for (step, seconds) in seeded.steps {
                eprintln!("{step} in {seconds:.1}s");
            }
        }
        #[cfg(feature = "tools")]
        Command::SeedAudit {
            directory,
            events,
            users,
            days,
        } => {
            store.migrate().await?;
            let Some(org) = store.directory_org(directory).await? else {
                return Err(format!("no directory {directory}").into());
            };
            let started = std::time::Instant::now();
            store
                .seed_audit_events(org, directory, events, users, days)
                .await?;
            eprintln!(
                "{events} audit events in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::AdminToken(AdminTokenCommand::Create) => {
            store.migrate().await?;
            let token = new_admin_token().await?;
            store.insert_admin_token(&token.id, &token.hash).await?;
            println!("{}", token.secret);
            eprintln!("(the admin token is shown only this once)");
        }
    }
    store.close().await;
    Ok(())
}
