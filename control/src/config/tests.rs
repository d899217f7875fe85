use super::*;

fn form(interface: &str) -> ReflectorForm {
    ReflectorForm {
        interface: interface.into(),
        ..ReflectorForm::default()
    }
}

#[test]
fn every_key_reads_into_the_typed_settings_and_shows_as_written() {
    let written = ReflectorForm {
        netns: Some("lab-r".into()),
        mode: Mode::MacIp,
        port: 0,
        oui: Some("00:1b:21".into()),
        dst_mac: Some("02:00:00:00:00:09".into()),
        signatures: vec!["RFC2544".into(), "Y.1564".into()],
        no_ipv6: true,
        no_vlan: true,
        backend: Backend::AfPacket,
        queues: Some(2),
        zero_copy: ZeroCopy::Off,
        xdp_mode: XdpMode::Generic,
        busy_poll: true,
        wake_latency: WakeLatency::Off,
        xdp_send: XdpSend::Off,
        stamp_port: 8620,
        stamp_mode: StampMode::Stateful,
        max_streams: 64,
        stream_idle_s: 30,
        allow: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
        rate_limit_pps: Some(1000),
        rate_burst: Some(8),
        loop_timeout_s: Some(600),
        autostart: false,
        ..form("eth1")
    };
    let read = written.clone().validate().unwrap();
    assert_eq!(
        (
            read.interface.as_str(),
            read.netns.as_deref(),
            read.autostart
        ),
        ("eth1", Some("lab-r"), false)
    );
    assert_eq!(
        read.worker,
        Settings {
            mode: Mode::MacIp,
            port: 0,
            oui: Some(dataplane::Oui([0x00, 0x1b, 0x21])),
            no_oui_filter: false,
            dst_mac: Some(dataplane::MacAddr([2, 0, 0, 0, 0, 9])),
            signatures: vec![dataplane::Signature::Rfc2544, dataplane::Signature::Y1564],
            no_ipv6: true,
            no_vlan: true,
            stamp_port: 8620,
            stamp_mode: StampMode::Stateful,
            max_streams: 64,
            stream_idle: Duration::from_secs(30),
            allow: vec![
                "192.0.2.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ],
            rate_limit: Some(1000),
            rate_burst: Some(8),
            loop_timeout: Some(Duration::from_secs(600)),
            backend: Backend::AfPacket,
            queues: Some(2),
            zero_copy: ZeroCopy::Off,
            xdp_mode: XdpMode::Generic,
            busy_poll: true,
            wake_latency: WakeLatency::Off,
            xdp_send: XdpSend::Off,
        }
    );
    assert_eq!(ReflectorForm::from(read.clone()), written);
    let args = read
        .worker_args_with_loop_timeout(read.worker.loop_timeout)
        .join(" ");
    assert!(
        args.starts_with("eth1 --json --stats-interval 1 --mode mac-ip --port 0 --oui 00:1b:21"),
        "{args}"
    );
}

#[test]
fn absent_keys_are_the_workers_defaults_and_other_spellings_are_shown_canonical() {
    let read = form("eth0").validate().unwrap();
    assert_eq!(read.worker, Settings::default());
    assert!(read.autostart && read.netns.is_none());
    let shown = serde_json::to_value(&read).unwrap();
    assert_eq!(
        (
            &shown["backend"],
            &shown["rate_burst"],
            &shown["stream_idle_s"]
        ),
        (
            &serde_json::json!("auto"),
            &serde_json::Value::Null,
            &serde_json::json!(300)
        )
    );
    let other = ReflectorForm {
        oui: Some("00-1B-21".into()),
        signatures: vec!["rfc2544".into(), "stamp".into()],
        backend: "af-packet".parse().unwrap(),
        ..form("eth0")
    };
    let shown = ReflectorForm::from(other.validate().unwrap());
    assert_eq!(shown.oui.as_deref(), Some("00:1b:21"));
    assert_eq!(shown.signatures, ["RFC2544", "STAMP"]);
    assert_eq!(shown.backend, Backend::AfPacket);
}

#[test]
fn a_rate_burst_goes_out_only_with_a_rate_limit_and_a_session_timeout_replaces_the_setting() {
    let s = ReflectorForm {
        rate_limit_pps: Some(50),
        loop_timeout_s: Some(60),
        ..form("eth0")
    }
    .validate()
    .unwrap();
    let args = s
        .worker_args_with_loop_timeout(s.worker.loop_timeout)
        .join(" ");
    assert!(
        args.contains("--rate-limit 50") && !args.contains("--rate-burst"),
        "{args}"
    );
    assert!(args.ends_with("--loop-timeout 60.000"), "{args}");
    let left = s
        .worker_args_with_loop_timeout(Some(Duration::from_millis(12_345)))
        .join(" ");
    assert!(left.ends_with("--loop-timeout 12.345"), "{left}");
}

#[test]
fn stamp_stream_and_safety_settings_get_precise_messages() {
    let with = |change: fn(&mut ReflectorForm)| {
        let mut s = form("eth0");
        change(&mut s);
        s
    };
    let cases: Vec<(ReflectorForm, &str)> = vec![
        (
            with(|s| s.stamp_port = 0),
            "stamp_port 0 is not a port: give the port STAMP session-senders use (RFC 8762: 862), or leave STAMP out of signatures",
        ),
        (
            with(|s| s.stamp_port = 3842),
            "stamp_port 3842 is also the test-frame port",
        ),
        (
            with(|s| {
                s.stamp_mode = StampMode::Stateful;
                s.max_streams = 0;
            }),
            "stamp_mode stateful counts packets per stream: it needs max_streams above 0",
        ),
        (
            with(|s| s.max_streams = 5_000_000),
            "max_streams 5000000 is more than 1000000",
        ),
        (
            with(|s| s.stream_idle_s = 0),
            "stream_idle_s 0 is out of range: use 1 up to 31536000 seconds (a year)",
        ),
        (
            with(|s| s.stream_idle_s = 40_000_000),
            "stream_idle_s 40000000 is out of range",
        ),
        (
            with(|s| s.loop_timeout_s = Some(0)),
            "loop_timeout_s 0 would never reflect",
        ),
        (
            with(|s| s.loop_timeout_s = Some(31_536_001)),
            "loop_timeout_s 31536001 is out of range",
        ),
        (
            with(|s| s.rate_limit_pps = Some(0)),
            "rate_limit_pps 0 would drop everything",
        ),
        (
            with(|s| s.rate_limit_pps = Some(2_000_000_000)),
            "rate_limit_pps 2000000000 is more than 1000000000",
        ),
        (
            with(|s| s.rate_burst = Some(10)),
            "rate_burst only applies with rate_limit_pps",
        ),
        (
            with(|s| {
                s.rate_limit_pps = Some(10);
                s.rate_burst = Some(0);
            }),
            "rate_burst 0 would drop everything",
        ),
        (
            with(|s| s.allow = vec!["192.0.2.0/24".into(), "10.0.0.0/33".into()]),
            "allow[1]: \"10.0.0.0/33\" is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32",
        ),
        (
            with(|s| s.allow = vec!["example.com".into()]),
            "allow[0]: \"example.com\" is not a CIDR prefix",
        ),
        (
            with(|s| s.allow = vec!["192.0.2.7".into()]),
            "allow[0]: \"192.0.2.7\" has no prefix length: write 192.0.2.7/32 for this address alone",
        ),
        (
            with(|s| s.allow = vec!["2001:db8::1".into()]),
            "write 2001:db8::1/128",
        ),
        (
            with(|s| s.allow = vec!["192.0.2.7/24".into()]),
            "allow[0]: \"192.0.2.7/24\" has bits set after the prefix length: did you mean 192.0.2.0/24?",
        ),
        (
            with(|s| s.allow = vec!["10.0.0.0/8,192.0.2.0/24".into()]),
            "holds several prefixes: give each as its own list item",
        ),
        (
            with(|s| s.allow = vec![String::new()]),
            "allow[0]: \"\" is empty",
        ),
        (
            with(|s| s.allow = vec![" 10.0.0.0/8".into()]),
            "has spaces around it",
        ),
        (
            with(|s| s.allow = vec!["10.0.0.0/8".into(); 257]),
            "allow lists 257 prefixes; at most 256",
        ),
    ];
    for (s, expected) in cases {
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
        assert!(!err.contains("Usage") && !err.contains("--"), "{err}");
    }
    // Fine once STAMP is not reflected: the ports no longer matter.
    let no_stamp = ReflectorForm {
        stamp_port: 3842,
        signatures: vec!["RFC2544".into()],
        ..form("eth0")
    };
    no_stamp.validate().unwrap();
    let stamp_only = ReflectorForm {
        stamp_port: 0,
        signatures: vec!["STAMP".into()],
        ..form("eth0")
    };
    assert!(stamp_only
        .validate()
        .unwrap_err()
        .to_string()
        .contains("stamp_port 0"));
}

#[test]
fn bad_settings_get_precise_messages() {
    let cases: [(ReflectorForm, &str); 7] = [
        (form(""), "interface is required"),
        (form("eth0/../x"), "not a valid name"),
        (form("averyveryverylongname"), "at most 15"),
        (
            ReflectorForm {
                oui: Some("00:c0".into()),
                ..form("eth0")
            },
            "not an OUI",
        ),
        (
            ReflectorForm {
                signatures: vec!["ping".into()],
                ..form("eth0")
            },
            "unknown signature",
        ),
        (
            ReflectorForm {
                dst_mac: Some("01:00:5e:00:00:01".into()),
                ..form("eth0")
            },
            "group address",
        ),
        (
            ReflectorForm {
                oui: Some("00:c0:17".into()),
                no_oui_filter: true,
                ..form("eth0")
            },
            "cannot be used with",
        ),
    ];
    for (s, expected) in cases {
        let err = s.clone().validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{s:?}: {err}");
        assert!(!err.contains("Usage"), "{err}");
    }
}

#[test]
fn interfaces_inherit_defaults_and_override_them() {
    let config = Config::parse(
        r#"
        listen = "127.0.0.1:9090"
        token = "secret"
        reflector = "/opt/reflector"
        [defaults]
        mode = "mac"
        no_vlan = true
        [interfaces.eth0]
        [interfaces.eth1]
        mode = "all"
        port = 5000
        autostart = false
        "#,
    )
    .unwrap();
    assert_eq!(config.listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(config.token.as_deref(), Some("secret"));
    assert_eq!(config.reflector, Some(PathBuf::from("/opt/reflector")));
    let [eth0, eth1] = config.reflectors.as_slice() else {
        panic!("{:?}", config.reflectors)
    };
    assert_eq!(
        (
            eth0.interface.as_str(),
            eth0.worker.mode,
            eth0.worker.no_vlan,
            eth0.autostart
        ),
        ("eth0", Mode::Mac, true, true)
    );
    assert_eq!(
        (
            eth1.worker.mode,
            eth1.worker.port,
            eth1.worker.no_vlan,
            eth1.autostart
        ),
        (Mode::All, 5000, true, false)
    );
}

#[test]
fn the_new_keys_read_from_a_file() {
    let config = Config::parse(
        r#"
        [defaults]
        allow = ["192.0.2.0/24"]
        rate_limit_pps = 1000
        [interfaces.eth0]
        stamp_port = 8620
        stamp_mode = "stateful"
        max_streams = 4096
        stream_idle_s = 60
        rate_burst = 16
        loop_timeout_s = 3600
        wake_latency = "off"
        xdp_send = "off"
        "#,
    )
    .unwrap();
    let eth0 = &config.reflectors[0].worker;
    assert_eq!(eth0.stamp_port, 8620);
    assert_eq!(eth0.stamp_mode, StampMode::Stateful);
    assert_eq!(
        (eth0.max_streams, eth0.stream_idle),
        (4096, Duration::from_secs(60))
    );
    assert_eq!(eth0.allow.len(), 1);
    assert_eq!(eth0.allow[0].to_string(), "192.0.2.0/24");
    assert_eq!((eth0.rate_limit, eth0.rate_burst), (Some(1000), Some(16)));
    assert_eq!(eth0.loop_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(eth0.wake_latency, WakeLatency::Off);
    assert_eq!(eth0.xdp_send, XdpSend::Off);
    let cases = [
        (
            "[interfaces.eth0]\nstamp_mode = \"sometimes\"",
            "interfaces.eth0: unknown variant `sometimes`, expected `stateless` or `stateful`",
        ),
        (
            "[interfaces.eth0]\nwake_latency = \"auto\"",
            "interfaces.eth0: unknown variant `auto`, expected `on` or `off`",
        ),
        (
            "[interfaces.eth0]\nxdp_send = \"yes\"",
            "interfaces.eth0: unknown variant `yes`, expected `on` or `off`",
        ),
        (
            "[interfaces.eth0]\nallow = [\"10.0.0.0/40\"]",
            "interfaces.eth0: allow[0]: \"10.0.0.0/40\" is not a CIDR prefix",
        ),
        (
            "[interfaces.eth0]\nrate_burst = 5",
            "interfaces.eth0: rate_burst only applies with rate_limit_pps",
        ),
        (
            "[interfaces.eth0]\nloop_timeout_s = -1",
            "interfaces.eth0: invalid value: integer `-1`",
        ),
    ];
    for (text, expected) in cases {
        let err = Config::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn bad_files_name_the_problem() {
    let cases = [
        ("listen = 5", "invalid type"),
        ("colour = 1", "unknown field `colour`"),
        (
            "[interfaces.eth0]\nmode = \"ports\"",
            "interfaces.eth0: unknown variant `ports`",
        ),
        (
            "[interfaces.eth0]\nspeed = 1",
            "interfaces.eth0: unknown field `speed`",
        ),
        (
            "[interfaces.eth0]\ninterface = \"eth1\"",
            "remove `interface`",
        ),
        (
            "[defaults]\ninterface = \"eth1\"",
            "[defaults] cannot name an interface",
        ),
        (
            "[interfaces.eth0]\noui = \"zz:zz:zz\"",
            "interfaces.eth0: oui: \"zz:zz:zz\" is not an OUI like 00:c0:17",
        ),
        ("interfaces = 3", "invalid type"),
    ];
    for (text, expected) in cases {
        let err = Config::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn the_shipped_example_config_is_valid() {
    let config = Config::parse(include_str!("../../../deploy/control.example.toml")).unwrap();
    let ids: Vec<String> = config
        .reflectors
        .iter()
        .map(ReflectorSettings::id)
        .collect();
    assert_eq!(ids, ["eth1", "eth2"]);
    assert!(!config.reflectors[1].autostart && config.reflectors[1].worker.no_oui_filter);
}

#[test]
fn the_packaged_default_config_is_valid_and_starts_nothing() {
    let config = Config::parse(include_str!("../../../deploy/control.toml")).unwrap();
    assert!(config.reflectors.is_empty());
    assert_eq!(
        config.listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:8080")
    );
}

#[test]
fn namespaced_reflectors_get_qualified_ids() {
    let s = ReflectorForm {
        netns: Some("lab-r".into()),
        ..form("veth0")
    };
    assert_eq!(s.id(), "veth0@lab-r");
    assert_eq!(canonical_id("lab-r:veth0"), "veth0@lab-r");
    assert_eq!(canonical_id("veth0@lab-r"), "veth0@lab-r");
    assert_eq!(s.validate().unwrap().id(), "veth0@lab-r");
    assert_eq!(form("eth0").id(), "eth0");
}

#[test]
fn a_file_without_interfaces_is_refused_unless_it_says_none_are_meant() {
    for text in ["", "  \n", "\n\n"] {
        let err = Config::parse(text).unwrap_err();
        assert!(
            err.contains("the file is empty (truncated?)") && err.contains("`interfaces = {}`"),
            "{text:?}: {err}"
        );
    }
    for text in [
        "# truncated",
        "listen = \"127.0.0.1:8080\"\n[defaults]\nmode = \"mac\"\n",
    ] {
        let err = Config::parse(text).unwrap_err();
        assert!(
            err.contains("names no interfaces") && err.contains("`interfaces = {}`"),
            "{text:?}: {err}"
        );
    }
    for text in [NO_INTERFACES, "listen = \"127.0.0.1:8080\"\n[interfaces]\n"] {
        let config = Config::parse(text).unwrap();
        assert!(config.reflectors.is_empty(), "{text:?}");
    }
}

#[test]
fn allowed_hosts_are_host_names() {
    let config =
        Config::parse("allowed_hosts = [\"rig1.example.net\", \"Dash.\"]\ninterfaces = {}\n")
            .unwrap();
    assert_eq!(config.allowed_hosts, ["rig1.example.net", "Dash."]);
    for (bad, index) in [("http://rig1", 0), ("rig1:8080", 0), ("a..b", 0), ("-x", 0)] {
        let text = format!("allowed_hosts = [{bad:?}]\ninterfaces = {{}}\n");
        let err = Config::parse(&text).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "allowed_hosts[{index}]: {bad:?} is not a host name"
            )),
            "{err}"
        );
    }
}
