//! The settings of command 1: its own, and every service's that make sense on one machine,
//! passed on to the services it starts. Each is a flag and an environment variable.
use clap::{ArgMatches, Args, Command, FromArgMatches, Parser};
use shelfguard_floor_channel::{Delivery, Secret};
use shelfguard_inventory::ledger;
use shelfguard_offer_generator::lifecycle;
use shelfguard_runtime::KafkaArgs;
use shelfguard_runtime::hold::HoldArgs;
use shelfguard_stockout_detector::episodes;

/// Default of `BROKER_STORAGE`.
pub const DEFAULT_BROKER_STORAGE: &str = "memory://tansu/";
/// Default of `BROKER_PORT`.
pub const DEFAULT_BROKER_PORT: u16 = 9092;
/// Default of `TOPIC_PARTITIONS`.
pub const DEFAULT_TOPIC_PARTITIONS: i32 = 6;
/// Default of `TOPIC_REPLICATION`.
pub const DEFAULT_TOPIC_REPLICATION: i32 = 1;
/// Default of `LOG_FILE`.
pub const DEFAULT_LOG_FILE: &str = "shelfguard-local.log";
/// Default of `FLOOR_HTTP_ADDR` (this machine only; the floor channel alone listens on all).
pub const DEFAULT_FLOOR_HTTP_ADDR: &str = "127.0.0.1:8081";
/// Command 1's default of `REORDER_RETRY_AFTER_SECS`, on purpose much shorter than the
/// inventory service's ([`ledger::DEFAULT_REORDER_RETRY_AFTER_SECS`], 900): the simulator's
/// troubled SKUs fail their first reorders, and with 10 s the failures (and the free offers
/// they lead to) pile up within a minute instead of an hour.
pub const LOCAL_REORDER_RETRY_AFTER_SECS: i64 = 10;

/// Settings of command 1.
#[derive(Debug, Parser)]
#[command(
    name = "shelfguard-local",
    version,
    about = "Runs the whole system locally: broker, services, store simulator.",
    mut_arg("reorder_retry_after_secs", |a| {
        a.default_value(&*Box::leak(LOCAL_REORDER_RETRY_AFTER_SECS.to_string().into_boxed_str()))
            .help(format!(
                "After a failed reorder, inventory waits this many seconds before asking again; \
                 0 to {}. Command 1 uses {LOCAL_REORDER_RETRY_AFTER_SECS} s, not the \
                 inventory service's {}, so the simulated failures pile up visibly",
                ledger::MAX_REORDER_RETRY_AFTER_SECS,
                ledger::DEFAULT_REORDER_RETRY_AFTER_SECS
            ))
    }),
    // Set by command 1 itself: the cluster from KAFKA_BOOTSTRAP_SERVERS above or the embedded
    // broker, and no health endpoints (the services share one process).
    mut_arg("bootstrap_servers", |a| a.hide(true)),
    mut_arg("health_addr", |a| a.hide(true))
)]
pub struct Cli {
    /// An existing Kafka cluster; when unset, an embedded broker is started.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap_servers: Option<String>,
    /// Storage of the embedded broker: `memory://tansu/` (lost at exit) or `sqlite://FILE.db`
    /// (a file relative to the working directory, kept across runs).
    #[arg(long, env = "BROKER_STORAGE", default_value = DEFAULT_BROKER_STORAGE, value_parser = crate::broker::parse_storage)]
    pub broker_storage: String,
    /// Port of the embedded broker (0 = any free port); a port in use stops command 1 at once.
    #[arg(long, env = "BROKER_PORT", default_value_t = DEFAULT_BROKER_PORT)]
    pub broker_port: u16,
    /// Partitions of each store-keyed topic created at start; at least 1.
    #[arg(long, env = "TOPIC_PARTITIONS", default_value_t = DEFAULT_TOPIC_PARTITIONS, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Replication factor of the topics created at start; 1 to 32767.
    #[arg(long, env = "TOPIC_REPLICATION", default_value_t = DEFAULT_TOPIC_REPLICATION, value_parser = clap::value_parser!(i32).range(1..=i64::from(i16::MAX)))]
    pub replication: i32,
    /// Where the logs go (appended); `-` writes them to the terminal instead. The terminal shows
    /// the offers, a summary every 10 s and errors.
    #[arg(long, env = "LOG_FILE", default_value = DEFAULT_LOG_FILE)]
    pub log_file: String,
    /// Passed to every client (prefix, options, batching); bootstrap comes from above.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// How long inventory and offer-generator hold events for a SKU not in the catalogue yet
    /// (one setting for both; [`Shared`], so that each policy reads it too).
    #[command(flatten)]
    pub hold: Shared<HoldArgs>,
    #[command(flatten, next_help_heading = "Store simulator")]
    pub sim: shelfguard_simulator::SimConfig,
    #[command(flatten, next_help_heading = "inventory")]
    pub inventory: Shared<ledger::Policy>,
    #[command(flatten, next_help_heading = "stockout-detector")]
    pub detector: Shared<episodes::Policy>,
    #[command(flatten, next_help_heading = "offer-generator")]
    pub offers: Shared<lifecycle::Policy>,
    /// Address of the floor staff console and API (the URLs with tokens are printed at start);
    /// `0.0.0.0:8081` lets phones on the same network open it.
    #[arg(long, env = "FLOOR_HTTP_ADDR", default_value = DEFAULT_FLOOR_HTTP_ADDR, help_heading = "floor-channel")]
    pub floor_http_addr: String,
    /// Currency of the gift values on the console (ISO 4217 code).
    #[arg(long, env = "FLOOR_CURRENCY", default_value = shelfguard_floor_channel::DEFAULT_CURRENCY, value_parser = shelfguard_floor_channel::currency, help_heading = "floor-channel")]
    pub floor_currency: String,
    /// Secret: webhooks of the simulated stores, a JSON array of
    /// `{"store":"S-001","url":"https://...","format":"slack"|"json","secret":"..."}`.
    #[arg(long, env = "WEBHOOKS", default_value = "", value_parser = shelfguard_floor_channel::secret, hide_env_values = true, hide_default_value = true, help_heading = "floor-channel")]
    pub webhooks: Secret,
    #[command(flatten, next_help_heading = "floor-channel")]
    pub delivery: Delivery,
}

/// Settings defined by more than one service, flattened into command 1 once (by [`Cli::hold`])
/// and given to each.
const SHARED: &[&str] = &["unknown_sku_grace_hours"];

/// A service's settings flattened into command 1 without repeating one that command 1 already
/// defines (only those in [`SHARED`]: any other clash is a mistake and stops at build time).
/// All of them are read back from the one parse without being taken out of it (as a derived
/// `FromArgMatches` would), so each service gets the same value.
#[derive(Debug, Clone)]
pub struct Shared<P>(pub P);

impl<P: Args> Args for Shared<P> {
    fn augment_args(cmd: Command) -> Command {
        // The copies take the heading and place of this spot (clap keeps a heading as `'static`;
        // a command is built once per process, so leaking its few bytes is fine).
        let heading: Option<&'static str> = cmd
            .get_next_help_heading()
            .map(|h| &*Box::leak(h.to_owned().into_boxed_str()));
        let mut cmd = cmd;
        for arg in P::augment_args(Command::new("scratch")).get_arguments() {
            let id = arg.get_id().as_str();
            if cmd.get_arguments().any(|a| a.get_id() == id) {
                assert!(
                    SHARED.contains(&id),
                    "command 1 would define `{id}` twice; share it on purpose or rename it"
                );
                continue;
            }
            cmd = cmd.arg(arg.clone().help_heading(heading).display_order(None));
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<P: FromArgMatches> FromArgMatches for Shared<P> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        P::from_arg_matches(matches).map(Shared)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("shelfguard-local").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_policy_is_accepted_and_reaches_its_service() {
        let cli = parse(&[
            "--reorder-retry-after-secs=30",
            "--default-order-up-to=40",
            "--phantom-false-alarms-per-store-day=0.1",
            "--offer-ttl-minutes=15",
            "--unknown-sku-grace-hours=2",
            "--max-attempts=2",
        ])
        .unwrap();
        assert_eq!(cli.inventory.0.reorder_retry_after_secs, 30);
        assert_eq!(cli.inventory.0.default_order_up_to, 40);
        assert_eq!(cli.detector.0.phantom_false_alarms_per_store_day, 0.1);
        assert_eq!(cli.offers.0.offer_ttl_minutes, 15);
        // One setting, given to both services that hold events.
        assert_eq!(cli.inventory.0.hold.unknown_sku_grace_hours, 2);
        assert_eq!(cli.offers.0.hold.unknown_sku_grace_hours, 2);
        assert_eq!(cli.delivery.max_attempts, 2);
    }

    #[test]
    fn the_retry_back_off_is_short_on_purpose_and_still_checked() {
        if std::env::var_os("REORDER_RETRY_AFTER_SECS").is_none() {
            assert_eq!(
                parse(&[]).unwrap().inventory.0.reorder_retry_after_secs,
                LOCAL_REORDER_RETRY_AFTER_SECS
            );
        }
        let e = parse(&["--reorder-retry-after-secs=-1"]).unwrap_err();
        assert!(e.to_string().contains("not in 0..="), "{e}");
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("Command 1 uses 10 s, not the inventory service's 900"),
            "{help}"
        );
    }

    #[test]
    fn out_of_range_topics_are_refused() {
        for arg in ["--partitions=0", "--replication=0", "--replication=40000"] {
            assert!(parse(&[arg]).is_err(), "{arg}");
        }
    }
}
