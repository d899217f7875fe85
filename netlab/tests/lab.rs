//! Root-only: labs are built as described and removed again, also when the thread that
//! owns one panics. Fails (never skips) where a lab cannot be built.
#![cfg(target_os = "linux")]

use netlab::{netns_exists, End, Lab, LabError};
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

fn ip_in(end: &End, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", &end.netns])
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip -n {} {args:?}: {}",
        end.netns,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unique(name: &str) -> Lab {
    Lab::unique(name).unwrap_or_else(|e| panic!("cannot build a lab: {e}"))
}

fn both_exist(netns: &[String; 2]) -> [bool; 2] {
    netns.clone().map(|n| netns_exists(&n))
}

/// Whether a datagram from `head_ip` reaches `reflector_ip` through the host stacks of
/// both namespaces.
fn datagram_crosses(lab: &Lab, head_ip: &str, reflector_ip: &str) -> bool {
    let receiver = lab
        .reflector
        .run(|| UdpSocket::bind((reflector_ip, 0)))
        .expect("enter the reflector's namespace")
        .unwrap_or_else(|e| panic!("bind {reflector_ip} in the reflector's namespace: {e}"));
    let to = receiver.local_addr().unwrap();
    lab.head
        .run(|| {
            let sender = UdpSocket::bind((head_ip, 0))
                .unwrap_or_else(|e| panic!("bind {head_ip} in the head's namespace: {e}"));
            sender.send_to(b"lab", to).expect("send across the link");
        })
        .expect("enter the head's namespace");
    receiver
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 8];
    matches!(receiver.recv_from(&mut buf), Ok((3, _))) && &buf[..3] == b"lab"
}

#[test]
fn a_lab_has_both_ends_with_their_macs_and_addresses() {
    let lab = unique("nl-build");
    assert_eq!(
        (
            lab.head.interface.as_str(),
            lab.reflector.interface.as_str()
        ),
        ("nl-build-h", "nl-build-r")
    );
    for (end, mac, ip, ipv6) in [
        (&lab.head, "00:c0:17:de:00:01", "192.0.2.1", "2001:db8::1"),
        (
            &lab.reflector,
            "02:52:45:46:4c:01",
            "192.0.2.2",
            "2001:db8::2",
        ),
    ] {
        assert!(netns_exists(&end.netns), "{}", end.netns);
        assert_eq!((end.mac, end.ip, end.ipv6), (mac, ip, ipv6));
        let link = ip_in(end, &["link", "show", "dev", &end.interface]);
        assert!(link.contains(mac) && link.contains("state UP"), "{link}");
        let addrs = ip_in(end, &["addr", "show", "dev", &end.interface]);
        assert!(addrs.contains(&format!("inet {ip}/24")), "{addrs}");
        assert!(addrs.contains(&format!("inet6 {ipv6}/64")), "{addrs}");
        assert!(!addrs.contains("tentative"), "DAD is off: {addrs}");
        let lo = ip_in(end, &["link", "show", "dev", "lo"]);
        assert!(lo.contains("UP"), "{lo}");
        // The lab's interfaces exist only inside it.
        let host = Command::new("ip")
            .args(["link", "show", "dev", &end.interface])
            .output()
            .unwrap();
        assert!(!host.status.success(), "{} in the host", end.interface);
    }
    let offloads = lab
        .head
        .exec("ethtool")
        .args(["-k", &lab.head.interface])
        .output()
        .expect("run ethtool");
    let offloads = String::from_utf8_lossy(&offloads.stdout);
    assert!(offloads.contains("tx-checksumming: off"), "{offloads}");
    // Addresses are usable at once, over both families.
    assert!(datagram_crosses(
        &lab,
        netlab::HEAD_IP,
        netlab::REFLECTOR_IP
    ));
    assert!(datagram_crosses(
        &lab,
        netlab::HEAD_IPV6,
        netlab::REFLECTOR_IPV6
    ));
}

#[test]
fn dropping_a_lab_removes_both_namespaces() {
    let lab = unique("nl-drop");
    let netns = [lab.head.netns.clone(), lab.reflector.netns.clone()];
    assert_eq!(both_exist(&netns), [true, true]);
    drop(lab);
    assert_eq!(both_exist(&netns), [false, false]);
}

#[test]
fn a_panic_while_a_lab_is_held_still_removes_it() {
    let (names, built) = std::sync::mpsc::channel();
    let owner = std::thread::spawn(move || {
        let lab = unique("nl-panic");
        names
            .send([lab.head.netns.clone(), lab.reflector.netns.clone()])
            .unwrap();
        panic!("a failing test");
    });
    assert!(owner.join().is_err(), "the thread panicked");
    let netns = built.recv().expect("the lab was built");
    assert_eq!(both_exist(&netns), [false, false]);
}

#[test]
fn a_panic_inside_a_namespace_reaches_the_caller_and_the_lab_is_removed() {
    let lab = unique("nl-inner");
    let netns = [lab.head.netns.clone(), lab.reflector.netns.clone()];
    let outcome = std::panic::catch_unwind(|| {
        let _ = lab.head.run(|| panic!("inside the head"));
    });
    let message = outcome.expect_err("the panic is resumed on the caller");
    assert_eq!(message.downcast_ref::<&str>(), Some(&"inside the head"));
    drop(lab);
    assert_eq!(both_exist(&netns), [false, false]);
}

#[test]
fn labs_of_one_name_run_side_by_side() {
    let (a, b) = (unique("nl-twice"), unique("nl-twice"));
    assert_ne!(a.head.netns, b.head.netns);
    assert_eq!(a.head.interface, b.head.interface);
    assert!(netns_exists(&a.reflector.netns) && netns_exists(&b.reflector.netns));
}

#[test]
fn labs_left_by_dead_processes_are_removed() {
    // A PID that no longer runs.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let orphan = format!("nl-orphan-{}-0-h", gone.id());
    let out = Command::new("ip")
        .args(["netns", "add", &orphan])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _lab = unique("nl-orphan");
    assert!(!netns_exists(&orphan), "{orphan} is still there");
}

#[test]
fn a_named_lab_replaces_a_stale_one() {
    let lab = Lab::create("nl-stale").unwrap();
    assert_eq!(
        (lab.head.netns.as_str(), lab.reflector.netns.as_str()),
        ("nl-stale-h", "nl-stale-r")
    );
    // A process killed without cleaning up leaves its lab behind...
    std::mem::forget(lab);
    assert!(Lab::exists("nl-stale"));
    // ...and the next one replaces it instead of failing on "File exists".
    let lab = Lab::create("nl-stale").unwrap();
    drop(lab);
    assert!(!Lab::exists("nl-stale"));
}

#[test]
fn bad_names_are_refused_before_anything_is_built() {
    assert!(matches!(
        Lab::unique("much-too-long"),
        Err(LabError::BadName(_))
    ));
    assert!(!Lab::exists("much-too-long"));
}

#[test]
fn jumbo_mtu_on_both_ends() {
    let lab = unique("nl-mtu");
    lab.set_mtu(9500).unwrap();
    for end in [&lab.head, &lab.reflector] {
        let link = ip_in(end, &["link", "show", "dev", &end.interface]);
        assert!(link.contains("mtu 9500"), "{link}");
    }
}
