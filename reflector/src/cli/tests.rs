use super::*;
use dataplane::filter::{DstMacFilter, NETALLY_OUI};
use dataplane::safety::{RateLimit, Safety};
use dataplane::SignatureSet;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("reflector").chain(args.iter().copied()))
}

fn parse_args(args: &[String]) -> ReflectArgs {
    Cli::try_parse_from(std::iter::once("reflector".to_owned()).chain(args.iter().cloned()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .reflect
}

#[test]
fn defaults_follow_the_spec() {
    let cli = parse(&["eth0"]).unwrap();
    assert_eq!(cli.reflect.settings(), Settings::default());
    let config = cli
        .reflect
        .worker_config(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        .unwrap();
    let filter = config.filter;
    assert_eq!(
        filter.dst_mac,
        DstMacFilter::Exact(MacAddr([2, 0, 0, 0, 0, 1]))
    );
    assert_eq!(filter.src_oui, Some(NETALLY_OUI));
    assert_eq!(filter.udp_port, 3842);
    assert_eq!(filter.signatures, SignatureSet::ALL);
    assert!(filter.ipv6 && filter.vlan);
    assert_eq!(config.mode, Mode::All);
    assert_eq!(cli.reflect.output.format(), Format::Human);
}

#[test]
fn every_filter_flag_lands_in_the_filter() {
    let cli = parse(&[
        "eth0",
        "--mode",
        "mac-ip",
        "--port",
        "0",
        "--oui",
        "00:1b:21",
        "--dst-mac",
        "02:00:00:00:00:09",
        "--signatures",
        "rfc2544,y.1564",
        "--no-ipv6",
        "--no-vlan",
        "--json",
    ])
    .unwrap();
    let config = cli
        .reflect
        .worker_config(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        .unwrap();
    let filter = config.filter;
    assert_eq!(config.mode, Mode::MacIp);
    assert_eq!(filter.udp_port, 0);
    assert_eq!(filter.src_oui, Some(Oui([0x00, 0x1b, 0x21])));
    assert_eq!(
        filter.dst_mac,
        DstMacFilter::Exact(MacAddr([2, 0, 0, 0, 0, 9]))
    );
    assert!(
        filter.signatures.contains(Signature::Y1564)
            && !filter.signatures.contains(Signature::ProbeOt)
    );
    assert!(!filter.ipv6 && !filter.vlan);
    assert_eq!(cli.reflect.output.format(), Format::Json);
}

#[test]
fn stamp_stream_and_safety_flags_land_in_the_worker_config() {
    let cli = parse(&[
        "eth0",
        "--stamp-port",
        "8620",
        "--stamp-mode",
        "stateful",
        "--max-streams",
        "10",
        "--stream-idle",
        "30",
        "--allow",
        "192.0.2.0/24,2001:db8::/32",
        "--rate-limit",
        "1000",
        "--rate-burst",
        "5",
        "--loop-timeout",
        "60",
    ])
    .unwrap();
    let config = cli
        .reflect
        .worker_config(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        .unwrap();
    assert_eq!(config.filter.stamp_port, 8620);
    assert_eq!(config.stamp.mode, StampMode::Stateful);
    assert_eq!(config.streams.capacity, 10);
    assert_eq!(config.streams.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.safety.allow.len(), 2);
    assert_eq!(
        config.safety.rate_limit,
        Some(RateLimit {
            per_source_pps: 1000,
            burst: 5
        })
    );
    assert_eq!(config.safety.loop_timeout, Some(Duration::from_secs(60)));

    let defaults = parse(&["eth0"])
        .unwrap()
        .reflect
        .worker_config(None)
        .unwrap();
    assert_eq!(defaults.filter.stamp_port, 862);
    assert!(defaults.filter.signatures.contains(Signature::Stamp));
    assert_eq!(defaults.stamp.mode, StampMode::Stateless);
    assert_eq!(defaults.safety, Safety::default());
    let default_burst = parse(&["eth0", "--rate-limit", "10"])
        .unwrap()
        .reflect
        .worker_config(None)
        .unwrap();
    assert_eq!(default_burst.safety.rate_limit.unwrap().burst, 64);
}

#[test]
fn contradictory_stamp_and_safety_settings_are_refused() {
    let config_error = |args: &[&str]| {
        let mut all = vec!["eth0"];
        all.extend_from_slice(args);
        parse(&all)
            .unwrap()
            .reflect
            .worker_config(None)
            .unwrap_err()
            .to_string()
    };
    let overlap = config_error(&["--stamp-port", "3842"]);
    assert!(
        overlap.contains("--stamp-port 3842 is also the test-frame port")
            && overlap.contains("give --port and --stamp-port different values"),
        "{overlap}"
    );
    assert!(config_error(&["--stamp-port", "0"]).contains("not a port"));
    assert!(
        config_error(&["--stamp-mode", "stateful", "--max-streams", "0"])
            .contains("needs --max-streams")
    );
    assert!(config_error(&["--rate-limit", "0"]).contains("drop everything"));
    assert!(config_error(&["--rate-limit", "64", "--rate-burst", "0"]).contains("--rate-burst 0"));
    assert!(config_error(&["--max-streams", "1000001"]).contains("track fewer"));
    assert!(config_error(&["--stream-idle", "0"]).contains("forget every stream"));
    assert!(config_error(&["--queues", "0"]).contains("--queues must be at least 1"));
    assert!(config_error(&["--allow", "192.0.2.7/24"]).contains("did you mean 192.0.2.0/24?"));
    // Without STAMP, its port does not matter.
    let cli = parse(&["eth0", "--signatures", "rfc2544", "--stamp-port", "3842"]).unwrap();
    assert!(cli.reflect.worker_config(None).is_ok());
    // A worker whose session time is up starts timed out (the control plane's restarts).
    let cli = parse(&["eth0", "--loop-timeout", "0.000"]).unwrap();
    assert_eq!(
        cli.reflect.worker_config(None).unwrap().safety.loop_timeout,
        Some(Duration::ZERO)
    );

    let err = parse(&["eth0", "--allow", "192.0.2.0/33"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("192.0.2.0/33") && err.contains("not a CIDR prefix"),
        "{err}"
    );
    let err = parse(&["eth0", "--allow", "192.0.2.9"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("write 192.0.2.9/32"), "{err}");
    let err = parse(&["eth0", "--stamp-mode", "both"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("stateless or stateful"), "{err}");
    let err = parse(&["eth0", "--rate-burst", "5"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--rate-limit"), "{err}");
}

#[test]
fn offline_mode_accepts_any_unicast_destination() {
    let cli = parse(&[
        "--read",
        "in.pcap",
        "--write",
        "out.pcap",
        "--no-oui-filter",
    ])
    .unwrap();
    let filter = cli.reflect.worker_config(None).unwrap().filter;
    assert_eq!(filter.dst_mac, DstMacFilter::AnyUnicast);
    assert_eq!(filter.src_oui, None);
}

#[test]
fn bad_input_gets_a_precise_message() {
    let err = parse(&["eth0", "--mode", "ports"]).unwrap_err().to_string();
    assert!(err.contains("expected mac, mac-ip or all"), "{err}");
    let err = parse(&["eth0", "--oui", "00:c0"]).unwrap_err().to_string();
    assert!(err.contains("not an OUI"), "{err}");
    let err = parse(&["eth0", "--signatures", "ping"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown signature"), "{err}");
    let err = parse(&["--read", "in.pcap"]).unwrap_err().to_string();
    assert!(err.contains("--write"), "{err}");
    let err = parse(&["eth0", "--stats-interval=-1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of range"), "{err}");
    let err = parse(&[]).unwrap_err().to_string();
    assert!(err.contains("IFACE"), "{err}");
    let err = parse(&["eth0", "--xdp-mode", "driver"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[possible values: auto, native, generic]"),
        "{err}"
    );
    for (flag, value, name) in [
        ("--wake-latency", "auto", "WAKE_LATENCY"),
        ("--xdp-send", "yes", "XDP_SEND"),
    ] {
        let err = parse(&["eth0", flag, value]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag} <{name}>'"))
                && err.contains("[possible values: on, off]"),
            "{err}"
        );
    }
    let cli = parse(&["eth0", "--dst-mac", "01:00:5e:00:00:01"]).unwrap();
    let err = cli.reflect.worker_config(None).unwrap_err().to_string();
    assert!(
        err.contains("--dst-mac 01:00:5e:00:00:01 is a group address"),
        "{err}"
    );
}

/// The control plane starts workers with `Settings::worker_args`: what it generates
/// must parse back, here, into exactly the settings it came from.
#[test]
fn generated_worker_args_parse_back_into_the_same_settings() {
    let every_setting = Settings {
        mode: Mode::MacIp,
        port: 0,
        oui: Some(Oui([0x00, 0x1b, 0x21])),
        no_oui_filter: false,
        dst_mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        signatures: vec![Signature::Rfc2544, Signature::Y1564, Signature::Stamp],
        no_ipv6: true,
        no_vlan: true,
        stamp_port: 8620,
        stamp_mode: StampMode::Stateful,
        max_streams: 64,
        stream_idle: Duration::from_secs(30),
        allow: vec![
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        rate_limit: Some(1000),
        rate_burst: Some(8),
        loop_timeout: Some(Duration::from_millis(12_345)),
        backend: Backend::AfPacket,
        queues: Some(2),
        zero_copy: ZeroCopy::Off,
        xdp_mode: XdpMode::Generic,
        busy_poll: true,
        wake_latency: WakeLatency::Off,
        xdp_send: XdpSend::Off,
    };
    let no_vendor_filter = Settings {
        no_oui_filter: true,
        rate_limit: Some(50),
        loop_timeout: Some(Duration::ZERO),
        ..Settings::default()
    };
    for settings in [Settings::default(), every_setting, no_vendor_filter] {
        settings.validate().unwrap();
        let args = settings.worker_args("eth1");
        let parsed = parse_args(&args);
        assert_eq!(parsed.settings(), settings, "{args:?}");
        assert_eq!(parsed.interface.as_deref(), Some("eth1"));
        assert_eq!(parsed.output.format(), Format::Json);
        assert_eq!(parsed.output.stats_interval, Duration::from_secs(1));
    }
}

#[test]
fn tui_is_refused_with_the_machine_formats_pcap_files_and_the_search() {
    for args in [
        &["eth0", "--tui", "--json"][..],
        &["eth0", "--csv", "--tui"],
        &["--read", "in.pcap", "--write", "out.pcap", "--tui"],
        &[
            "probe",
            "eth0",
            "--to",
            "02:52:45:46:4c:01",
            "--tui",
            "--json",
        ],
        &[
            "probe",
            "eth0",
            "--to",
            "02:52:45:46:4c:01",
            "--tui",
            "--search",
        ],
    ] {
        let err = parse(args).unwrap_err().to_string();
        assert!(
            err.contains("cannot be used with") && err.contains("--tui"),
            "{args:?}: {err}"
        );
    }
    assert!(parse(&["eth0", "--tui"]).unwrap().reflect.output.tui);
}
