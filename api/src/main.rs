//! `api serve | migrate | seed-demo | create-admin | gen-keys | gateway-keys | export-schema | purge | gc-chunks`

use anyhow::Context;
use api::cli::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = domain::telemetry::init("store-api");
    let result = run(cli).await;
    telemetry.shutdown().await;
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(services) => api::cli::migrate(&services).await,
        Command::SeedDemo {
            services,
            products,
            pictures,
        } => {
            let pictures = pictures.map_or(api::cli::Pictures::All, api::cli::Pictures::First);
            api::cli::seed_demo(&services, pictures).await?;
            match products {
                Some(total) => api::cli::seed_products(&services, total).await,
                None => Ok(()),
            }
        }
        Command::CreateAdmin {
            services,
            email,
            password,
        } => api::cli::create_admin(&services, &email, &password).await,
        Command::GenKeys { dir } => api::cli::gen_keys(&dir),
        Command::GatewayKeys { keys, out } => api::cli::gateway_keys(*keys, &out),
        Command::Purge(args) => api::cli::purge(&args).await,
        Command::GcChunks {
            services,
            grace_secs,
        } => api::cli::gc_chunks(&services, grace_secs).await,
        Command::ExportSchema => {
            print!("{}", api::graphql::sdl());
            Ok(())
        }
    }
}

async fn serve(args: api::infra::config::ServeArgs) -> anyhow::Result<()> {
    let metrics_addr = args.metrics_addr;
    let config = args.into_config()?;
    let addr = config.listen_addr;
    let state = api::AppState::connect(config).await?;
    domain::metrics::install();
    tokio::spawn(domain::metrics::upkeep());
    if let Some(metrics_addr) = metrics_addr {
        let listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("binding API_METRICS_ADDR {metrics_addr}"))?;
        tracing::info!(addr = %metrics_addr, "metrics listening");
        let app = api::http::metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
    }
    if let Some(admin) = api::identity::bootstrap_admin(&state)
        .await
        .context("creating the bootstrap admin")?
    {
        tracing::info!(account.id = %admin.id, "bootstrap admin created");
    }
    if state.config.gateway_secret.is_none() {
        tracing::warn!(
            "GATEWAY_SECRET is not set: X-User-* headers are ignored, only bearer tokens authenticate"
        );
    }
    // The catalog's events (a build made current), from its outbox to NATS.
    tokio::spawn(api::catalog::outbox::relay(state.clone()));
    // What it published leaves the outbox after the retention.
    tokio::spawn(domain::retention::pruner(
        state.db.clone(),
        vec![domain::retention::Prunable::outbox(
            api::catalog::outbox::SCHEMA,
        )],
        state.config.services.messaging_retention(),
    ));
    // The storefront's listing follows discounts as they start and end.
    tokio::spawn(api::catalog::discounts::clock(state.clone()));
    if let Some(every) = state.config.builds.chunk_gc_every {
        tokio::spawn(api::catalog::chunks::collect_periodically(
            state.db.clone(),
            state.objects.clone(),
            every,
            state.config.builds.chunk_gc_grace,
        ));
    }
    let app = api::http::router(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "api listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(domain::server::shutdown())
    .await
    .context("serving")
}
