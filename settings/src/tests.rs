//! Validation, the dataplane configuration and the worker's command line.

use crate::*;
use dataplane::filter::{DstMacFilter, NETALLY_OUI};
use dataplane::safety::RateLimit;
use dataplane::{MacAddr, Mode, Oui, Signature, SignatureSet, StampMode};
use std::time::Duration;

fn with(change: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings::default();
    change(&mut settings);
    settings
}

fn messages(settings: &Settings) -> (String, String) {
    let error = settings.validate().unwrap_err();
    (
        error.clone().named(Naming::Flag).to_string(),
        error.named(Naming::Key).to_string(),
    )
}

#[test]
fn every_refusal_names_the_setting_as_a_flag_or_as_a_key() {
    let cases: Vec<(Settings, Field, &str, &str)> = vec![
        (
            with(|s| s.queues = Some(0)),
            Field::Queues,
            "--queues must be at least 1 (omit it to serve every queue)",
            "queues must be at least 1 (omit it to serve every queue)",
        ),
        (
            with(|s| {
                s.oui = Some(Oui([0, 0xc0, 0x17]));
                s.no_oui_filter = true;
            }),
            Field::Oui,
            "--oui cannot be used with --no-oui-filter",
            "oui cannot be used with no_oui_filter",
        ),
        (
            with(|s| s.dst_mac = Some(MacAddr([1, 0, 0x5e, 0, 0, 1]))),
            Field::DstMac,
            "--dst-mac 01:00:5e:00:00:01 is a group address; a reflector needs a unicast MAC",
            "dst_mac 01:00:5e:00:00:01 is a group address",
        ),
        (
            with(|s| s.stamp_port = 0),
            Field::StampPort,
            "--stamp-port 0 is not a port: give the port STAMP session-senders use (RFC 8762: 862), or leave STAMP out of --signatures",
            "stamp_port 0 is not a port: give the port STAMP session-senders use (RFC 8762: 862), or leave STAMP out of signatures",
        ),
        (
            with(|s| s.stamp_port = 3842),
            Field::StampPort,
            "--stamp-port 3842 is also the test-frame port: test frames to it would be taken for STAMP packets; give --port and --stamp-port different values",
            "stamp_port 3842 is also the test-frame port: test frames to it would be taken for STAMP packets; give port and stamp_port different values",
        ),
        (
            with(|s| s.max_streams = 5_000_000),
            Field::MaxStreams,
            "--max-streams 5000000 is more than 1000000: each worker reserves memory for all of them up front; track fewer streams",
            "max_streams 5000000 is more than 1000000",
        ),
        (
            with(|s| {
                s.stamp_mode = StampMode::Stateful;
                s.max_streams = 0;
            }),
            Field::StampMode,
            "--stamp-mode stateful counts packets per stream: it needs --max-streams above 0",
            "stamp_mode stateful counts packets per stream: it needs max_streams above 0",
        ),
        (
            with(|s| s.stream_idle = Duration::ZERO),
            Field::StreamIdle,
            "--stream-idle 0 is out of range: use 1 up to 31536000 seconds (a year); 0 would forget every stream at once",
            "stream_idle_s 0 is out of range: use 1 up to 31536000 seconds (a year)",
        ),
        (
            with(|s| s.stream_idle = Duration::from_secs(40_000_000)),
            Field::StreamIdle,
            "--stream-idle 40000000 is out of range",
            "stream_idle_s 40000000 is out of range: use 1 up to 31536000 seconds (a year)",
        ),
        (
            with(|s| s.loop_timeout = Some(Duration::from_secs(31_536_001))),
            Field::LoopTimeout,
            "--loop-timeout 31536001 is out of range",
            "loop_timeout_s 31536001 is out of range",
        ),
        (
            with(|s| s.rate_limit = Some(0)),
            Field::RateLimit,
            "--rate-limit 0 would drop everything",
            "rate_limit_pps 0 would drop everything: give frames per second per source IP, or omit it for no limit",
        ),
        (
            with(|s| s.rate_limit = Some(2_000_000_000)),
            Field::RateLimit,
            "--rate-limit 2000000000 is more than 1000000000, which would be no limit",
            "rate_limit_pps 2000000000 is more than 1000000000",
        ),
        (
            with(|s| s.rate_burst = Some(10)),
            Field::RateBurst,
            "--rate-burst only applies with --rate-limit: set --rate-limit too, or remove --rate-burst",
            "rate_burst only applies with rate_limit_pps: set rate_limit_pps too, or remove rate_burst",
        ),
        (
            with(|s| {
                s.rate_limit = Some(10);
                s.rate_burst = Some(0);
            }),
            Field::RateBurst,
            "--rate-burst 0 would drop everything: use at least 1 (or omit it for the default of 64)",
            "rate_burst 0 would drop everything",
        ),
        (
            with(|s| s.allow = vec!["10.0.0.0/8".parse().unwrap(); 257]),
            Field::Allow,
            "--allow lists 257 prefixes; at most 256 are supported (use wider prefixes)",
            "allow lists 257 prefixes; at most 256",
        ),
        (
            with(|s| {
                s.allow = vec!["10.0.0.0/8".parse().unwrap(), "192.0.2.7/24".parse().unwrap()]
            }),
            Field::Allow,
            "--allow \"192.0.2.7/24\" has bits set after the prefix length: did you mean 192.0.2.0/24?",
            "allow[1]: \"192.0.2.7/24\" has bits set after the prefix length: did you mean 192.0.2.0/24?",
        ),
    ];
    for (settings, field, flag, key) in cases {
        let error = settings.validate().unwrap_err();
        assert_eq!(error.field(), field, "{error:?}");
        let (as_flag, as_key) = messages(&settings);
        assert!(as_flag.contains(flag), "{flag:?} not in {as_flag:?}");
        assert!(as_key.contains(key), "{key:?} not in {as_key:?}");
        assert!(!as_key.contains("--"), "{as_key}");
        assert!(
            settings.worker_config(None).is_err(),
            "worker_config validates too"
        );
    }
}

#[test]
fn stamp_ports_matter_only_while_stamp_is_reflected() {
    let no_stamp = with(|s| {
        s.stamp_port = 3842;
        s.signatures = vec![Signature::Rfc2544];
    });
    no_stamp.validate().unwrap();
    let stamp_only = with(|s| {
        s.stamp_port = 0;
        s.signatures = vec![Signature::Stamp];
    });
    assert_eq!(stamp_only.validate(), Err(SettingsError::StampPortZero));
}

#[test]
fn a_user_asks_for_a_loop_timeout_with_time_in_it_but_a_worker_may_start_timed_out() {
    with(|s| s.loop_timeout = Some(Duration::ZERO))
        .validate()
        .unwrap();
    let zero = check_requested_loop_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(
        zero.named(Naming::Key).to_string(),
        "loop_timeout_s 0 would never reflect: give the seconds to reflect for, or omit it to reflect until stopped"
    );
    assert!(check_requested_loop_timeout(Duration::from_secs(MAX_SECONDS)).is_ok());
    assert!(check_requested_loop_timeout(Duration::from_secs(MAX_SECONDS + 1)).is_err());
}

#[test]
fn defaults_follow_the_spec() {
    let config = Settings::default()
        .worker_config(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        .unwrap();
    assert_eq!(
        config.filter.dst_mac,
        DstMacFilter::Exact(MacAddr([2, 0, 0, 0, 0, 1]))
    );
    assert_eq!(config.filter.src_oui, Some(NETALLY_OUI));
    assert_eq!(config.filter.udp_port, 3842);
    assert_eq!(config.filter.stamp_port, 862);
    assert_eq!(config.filter.signatures, SignatureSet::ALL);
    assert!(config.filter.ipv6 && config.filter.vlan);
    assert_eq!(config.mode, Mode::All);
    assert_eq!(config.stamp.mode, StampMode::Stateless);
    assert_eq!(config.streams, dataplane::streams::StreamLimits::default());
    assert_eq!(config.safety, dataplane::safety::Safety::default());
    let offline = Settings::default().worker_config(None).unwrap();
    assert_eq!(offline.filter.dst_mac, DstMacFilter::AnyUnicast);
}

#[test]
fn every_setting_lands_in_the_worker_config() {
    let settings = Settings {
        mode: Mode::MacIp,
        port: 0,
        oui: Some(Oui([0x00, 0x1b, 0x21])),
        dst_mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        signatures: vec![Signature::Rfc2544, Signature::Stamp],
        no_ipv6: true,
        no_vlan: true,
        stamp_port: 8620,
        stamp_mode: StampMode::Stateful,
        max_streams: 10,
        stream_idle: Duration::from_secs(30),
        allow: vec!["192.0.2.0/24".parse().unwrap()],
        rate_limit: Some(1000),
        rate_burst: Some(5),
        loop_timeout: Some(Duration::from_secs(60)),
        ..Settings::default()
    };
    let config = settings
        .worker_config(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        .unwrap();
    assert_eq!(config.mode, Mode::MacIp);
    assert_eq!(config.filter.udp_port, 0);
    assert_eq!(config.filter.src_oui, Some(Oui([0x00, 0x1b, 0x21])));
    assert_eq!(
        config.filter.dst_mac,
        DstMacFilter::Exact(MacAddr([2, 0, 0, 0, 0, 9]))
    );
    let signatures: Vec<Signature> = config.filter.signatures.iter().collect();
    assert_eq!(signatures, [Signature::Rfc2544, Signature::Stamp]);
    assert!(!config.filter.ipv6 && !config.filter.vlan);
    assert_eq!(config.filter.stamp_port, 8620);
    assert_eq!(config.stamp.mode, StampMode::Stateful);
    assert_eq!(
        (config.streams.capacity, config.streams.idle_timeout),
        (10, Duration::from_secs(30))
    );
    assert_eq!(config.safety.allow, settings.allow);
    assert_eq!(
        config.safety.rate_limit,
        Some(RateLimit {
            per_source_pps: 1000,
            burst: 5
        })
    );
    assert_eq!(config.safety.loop_timeout, Some(Duration::from_secs(60)));
    let unset_burst = Settings {
        rate_burst: None,
        ..settings
    };
    let limit = unset_burst.worker_config(None).unwrap().safety.rate_limit;
    assert_eq!(limit.unwrap().burst, DEFAULT_RATE_BURST);
    let no_filter = with(|s| s.no_oui_filter = true)
        .worker_config(None)
        .unwrap();
    assert_eq!(no_filter.filter.src_oui, None);
}

#[test]
fn worker_args_say_json_every_second_then_each_setting_once() {
    let args = Settings::default().worker_args("eth0").join(" ");
    assert_eq!(
        args,
        "eth0 --json --stats-interval 1 --mode all --port 3842 --backend auto \
         --zero-copy auto --xdp-mode auto --wake-latency on --xdp-send on --stamp-port 862 --stamp-mode stateless \
         --max-streams 1024 --stream-idle 300.000"
    );
    let all = Settings {
        oui: Some(Oui([0x00, 0x1b, 0x21])),
        dst_mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        signatures: vec![Signature::Rfc2544, Signature::Y1564],
        no_ipv6: true,
        no_vlan: true,
        backend: Backend::AfPacket,
        queues: Some(2),
        busy_poll: true,
        wake_latency: WakeLatency::Off,
        xdp_send: XdpSend::Off,
        allow: vec![
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        rate_limit: Some(50),
        rate_burst: Some(8),
        loop_timeout: Some(Duration::from_millis(12_345)),
        ..Settings::default()
    };
    let args = all.worker_args("eth1").join(" ");
    for expected in [
        "--oui 00:1b:21",
        "--dst-mac 02:00:00:00:00:09",
        "--signatures RFC2544,Y.1564",
        "--no-ipv6 --no-vlan --backend af-packet --queues 2",
        "--busy-poll --wake-latency off --xdp-send off",
        "--allow 192.0.2.0/24,2001:db8::/32",
        "--rate-limit 50 --rate-burst 8",
    ] {
        assert!(args.contains(expected), "{expected} not in {args}");
    }
    assert!(args.ends_with("--loop-timeout 12.345"), "{args}");
    let timed_out = with(|s| s.loop_timeout = Some(Duration::ZERO)).worker_args("eth0");
    assert!(timed_out.join(" ").ends_with("--loop-timeout 0.000"));
}

#[test]
fn xdp_tx_refuses_stream_tracking_and_runs_the_policy() {
    let in_kernel = |change: fn(&mut Settings)| {
        with(|s| {
            s.backend = Backend::XdpTx;
            s.max_streams = 0;
            change(s);
        })
    };
    assert_eq!(in_kernel(|_| {}).validate(), Ok(()));
    /// A change, then what the message must say as a flag and as a key.
    type Case = (fn(&mut Settings), &'static str, &'static str);
    let cases: [Case; 2] = [
        (
            |s| s.max_streams = 10,
            "--backend xdp-tx reflects in the kernel, where stream tracking cannot run: set --max-streams 0, or use --backend auto (which then runs AF_XDP)",
            "backend xdp-tx reflects in the kernel, where stream tracking cannot run: set max_streams 0, or use backend auto (which then runs AF_XDP)",
        ),
        (
            |s| {
                s.max_streams = 10;
                s.stamp_mode = StampMode::Stateful;
            },
            "where stream tracking cannot run: set --max-streams 0,",
            "where stream tracking cannot run: set max_streams 0,",
        ),
    ];
    // The policy runs in the XDP program.
    let policy = in_kernel(|s| {
        s.allow = vec!["192.0.2.0/24".parse().unwrap()];
        s.rate_limit = Some(100);
        s.loop_timeout = Some(Duration::from_secs(5));
    });
    assert_eq!(policy.validate(), Ok(()));
    assert_eq!(policy.needs_user_space(), None);
    for (change, flag, key) in cases {
        let settings = in_kernel(change);
        let (as_flag, as_key) = messages(&settings);
        assert!(as_flag.contains(flag), "{as_flag}");
        assert!(as_key.contains(key), "{as_key}");
        assert_eq!(settings.validate().unwrap_err().field(), Field::Backend);
        // The same settings are fine for the other back ends.
        for backend in [Backend::Auto, Backend::Xdp, Backend::AfPacket] {
            let mut other = settings.clone();
            other.backend = backend;
            assert_eq!(other.validate(), Ok(()), "{backend}");
        }
    }
}

#[test]
fn auto_runs_in_the_kernel_only_when_every_feature_can_and_says_why() {
    let defaults = Settings::default();
    assert_eq!(defaults.backend, Backend::Auto);
    assert_eq!(
        defaults.backend_choice(),
        (
            LiveBackend::AfXdp,
            Some("auto: stream tracking needs user space; --max-streams 0 for in-kernel".into())
        )
    );
    let no_streams = with(|s| s.max_streams = 0);
    assert_eq!(
        no_streams.backend_choice(),
        (
            LiveBackend::XdpTx,
            Some("auto: every enabled feature runs in the kernel".into())
        )
    );
    let policed = with(|s| {
        s.max_streams = 0;
        s.rate_limit = Some(10);
        s.allow = vec!["2001:db8::/32".parse().unwrap()];
        s.loop_timeout = Some(Duration::from_secs(5));
    });
    assert_eq!(policed.backend_choice(), no_streams.backend_choice());
    // Asked for by name, a back end runs as asked, with no reason to give.
    for (backend, live) in [
        (Backend::Xdp, LiveBackend::AfXdp),
        (Backend::XdpTx, LiveBackend::XdpTx),
        (Backend::AfPacket, LiveBackend::AfPacket),
    ] {
        assert_eq!(with(|s| s.backend = backend).backend_choice(), (live, None));
    }
}
