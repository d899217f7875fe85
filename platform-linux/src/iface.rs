//! Interface and process helpers the reflector needs before it can open sockets.
//!
//! Everything that names an interface asks the kernel through a socket ioctl rather
//! than reading `/sys/class/net`: sysfs shows the network namespace it was mounted in,
//! while an ioctl answers for the calling thread's namespace, which is what a thread
//! that entered another namespace with `setns` (the tests do) needs.

use crate::{Error, Result};
use dataplane::MacAddr;
use linux_raw_sys::general::{CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN};
use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::statfs::{statfs, BPF_FS_MAGIC};
use nix::unistd::Pid;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The interface index of `ifname` in the calling thread's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    match nix::net::if_::if_nametoindex(ifname) {
        Ok(index) => Ok(index),
        // ENODEV for an unknown name; a name that is too long or holds a NUL cannot
        // exist either, so say the same thing.
        Err(Errno::ENODEV) | Err(Errno::EINVAL) | Err(Errno::ENAMETOOLONG) => {
            Err(Error::NoInterface(ifname.to_owned()))
        }
        Err(errno) => Err(Error::Interface {
            ifname: ifname.to_owned(),
            what: "index",
            source: errno.into(),
        }),
    }
}

/// The unicast MAC address of an Ethernet interface: the default destination-MAC
/// filter, and the source of every frame the reflector sends back.
pub fn mac_address(ifname: &str) -> Result<MacAddr> {
    let mut req = ifreq(ifname)?;
    interface_ioctl(ifname, "MAC address", libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled the `ifru_hwaddr` member.
    let hwaddr = unsafe { req.ifr_ifru.ifru_hwaddr };
    if hwaddr.sa_family != libc::ARPHRD_ETHER {
        return Err(Error::Interface {
            ifname: ifname.to_owned(),
            what: "MAC address",
            source: io::Error::other(format!(
                "not an Ethernet interface (ARP hardware type {})",
                hwaddr.sa_family
            )),
        });
    }
    let mut mac = [0u8; 6];
    for (byte, raw) in mac.iter_mut().zip(hwaddr.sa_data) {
        *byte = raw as u8;
    }
    Ok(MacAddr(mac))
}

/// `ETHTOOL_GCHANNELS` from `<linux/ethtool.h>`, which neither `libc` nor
/// `linux-raw-sys` carries (nor the struct below).
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` from `<linux/ethtool.h>`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// How many RX queues `ifname` has in use: the valid AF_XDP queue ids are
/// `0..rx_queue_count`. Asks ethtool (combined + RX-only channels, as `ethtool -l`
/// shows them) and falls back to counting `/sys/class/net/<if>/queues/rx-*` for drivers
/// without channel reporting.
pub fn rx_queue_count(ifname: &str) -> Result<u32> {
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    let mut req = ifreq(ifname)?;
    req.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    match interface_ioctl(ifname, "channel count", libc::SIOCETHTOOL, &mut req) {
        Ok(()) if channels.combined_count + channels.rx_count > 0 => {
            return Ok(channels.combined_count + channels.rx_count)
        }
        // The driver does not report channels (or reports none): count sysfs queues.
        Ok(()) => {}
        Err(Error::Interface { source, .. }) if source.raw_os_error() == Some(libc::EOPNOTSUPP) => {
        }
        Err(err) => return Err(err),
    }
    let dir = format!("/sys/class/net/{ifname}/queues");
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Interface {
        ifname: ifname.to_owned(),
        what: "RX queues (from sysfs)",
        source,
    })?;
    let count = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(count.max(1) as u32)
}

/// An `ifreq` naming `ifname`, rejecting names the kernel could never hold.
fn ifreq(ifname: &str) -> Result<libc::ifreq> {
    // SAFETY: `ifreq` is plain old data; all-zero is a valid (empty) request.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if ifname.is_empty() || ifname.len() >= req.ifr_name.len() || ifname.contains('\0') {
        return Err(Error::NoInterface(ifname.to_owned()));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Run an interface ioctl on a throwaway datagram socket, which any process may open
/// and which lives in the calling thread's network namespace.
fn interface_ioctl(
    ifname: &str,
    what: &'static str,
    request: libc::c_ulong,
    req: &mut libc::ifreq,
) -> Result<()> {
    let to_error = |source: io::Error| {
        if source.raw_os_error() == Some(libc::ENODEV) {
            Error::NoInterface(ifname.to_owned())
        } else {
            Error::Interface {
                ifname: ifname.to_owned(),
                what,
                source,
            }
        }
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(to_error(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid, writable `ifreq` for the whole call, and every request
    // passed here (SIOCGIFHWADDR, SIOCETHTOOL) reads and writes only an `ifreq` and, for
    // SIOCETHTOOL, the live buffer its `ifru_data` points at.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(to_error(io::Error::last_os_error()));
    }
    Ok(())
}

/// The CPUs this process may run on, in ascending order: the candidates for pinning
/// workers.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))
        .map_err(|source| Error::Affinity { cpu: None, source })?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pin the calling thread to `cpu`. One worker per RX queue, each on its own CPU, keeps
/// a queue's frames in one cache and stops the scheduler from migrating the hot loop.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|source| Error::Affinity {
        cpu: Some(cpu),
        source,
    })?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|source| Error::Affinity {
        cpu: Some(cpu),
        source,
    })
}

/// Give the calling thread the lowest real-time priority (SCHED_FIFO 1). A worker that
/// sleeps in poll(2) then runs as soon as a frame wakes it, instead of waiting out the
/// time slice of whatever else runs on its CPU: on a busy CPU that wait was 1-5 ms, the
/// whole tail of the reflector's added latency. It still sleeps when idle, and the
/// kernel's RT throttling (`kernel.sched_rt_runtime_us`) keeps 5% of the CPU for other
/// tasks even when a flood keeps it busy.
pub fn prioritise_current_thread() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: `param` is a valid sched_param for the whole call; pid 0 is the calling
    // thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const BPFFS: &str = "/sys/fs/bpf";

/// Mount bpffs on `/sys/fs/bpf` unless it already is: libbpf and bpftool expect it there
/// for pinned maps and links, and minimal systems (containers, some VMs) boot without it.
pub fn ensure_bpffs() -> Result<()> {
    if statfs(BPFFS).is_ok_and(|fs| fs.filesystem_type() == BPF_FS_MAGIC) {
        return Ok(());
    }
    std::fs::create_dir_all(BPFFS).map_err(Error::Bpffs)?;
    let c = |s: &str| CString::new(s).expect("literal without NUL");
    let (source, target, fstype) = (c("bpf"), c(BPFFS), c("bpf"));
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call, and
    // a null `data` pointer means "no mount options".
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::Bpffs(io::Error::last_os_error()));
    }
    Ok(())
}

/// Lift RLIMIT_MEMLOCK. A UMEM's pages are charged against it unless the process has
/// CAP_IPC_LOCK, and the usual 8 MiB default is smaller than one queue's UMEM. Without
/// CAP_SYS_RESOURCE the limit cannot go above the hard limit, so the soft limit is
/// raised to it instead.
pub fn raise_memlock_limit() -> Result<()> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `unlimited` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return Ok(());
    }
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut current) } != 0 {
        return Err(Error::Memlock(io::Error::last_os_error()));
    }
    current.rlim_cur = current.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &current) } != 0 {
        return Err(Error::Memlock(io::Error::last_os_error()));
    }
    tracing::debug!(
        limit = current.rlim_max,
        "RLIMIT_MEMLOCK raised to its hard limit"
    );
    Ok(())
}

/// Fail early, with the fix, if this process cannot load XDP programs and open AF_XDP
/// sockets; otherwise the first symptom would be an EPERM from deep inside libbpf.
/// CAP_SYS_ADMIN stands in for CAP_BPF, as it does in the kernel.
pub fn check_af_xdp_privileges() -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(|source| Error::NotPrivileged {
            missing: format!("unknown: cannot read /proc/self/status: {source}"),
        })?;
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotPrivileged {
            missing: missing.join(", "),
        })
    }
}

/// Make the kernel discard everything addressed to `socket` at once, before it is
/// queued: a classic BPF socket filter that is a single `ret #0`, locked so it cannot
/// be removed, and the smallest receive buffer. For a socket held open only so that a
/// port counts as bound (the STAMP port under the copying back ends); the discarded
/// datagrams show in its drop count (/proc/net/udp), never in its receive queue.
pub fn discard_all_input(socket: BorrowedFd<'_>) -> io::Result<()> {
    let mut drop_all = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let program = libc::sock_fprog {
        len: drop_all.len() as u16,
        filter: drop_all.as_mut_ptr(),
    };
    // SAFETY: `program` points at `drop_all`, both live for the whole call, and the
    // length passed is the size of `program`; the kernel copies the filter.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&program as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_LOCK_FILTER, 1)?;
    // The kernel raises this to its minimum (SOCK_MIN_RCVBUF).
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUF, 0)
}

/// A value getsockopt(2) may fill with any bytes: integers only, every bit pattern valid.
///
/// # Safety
/// Implement only for plain C structs of integers (and integers).
pub(crate) unsafe trait SocketOptionValue: Copy {}
// SAFETY: an integer; every bit pattern is valid.
unsafe impl SocketOptionValue for u32 {}
// SAFETY: a C struct of six u64 counters.
unsafe impl SocketOptionValue for libc::xdp_statistics {}
// SAFETY: a C struct of two unsigned ints.
unsafe impl SocketOptionValue for libc::tpacket_stats {}

/// getsockopt(2) into a plain C value; the kernel may write less than all of it (an
/// older kernel's shorter struct), the rest stays zero.
pub(crate) fn get_option<T: SocketOptionValue>(
    socket: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
) -> io::Result<T> {
    // SAFETY: all-zero is a valid T (SocketOptionValue: integers only).
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes for the whole call and `len` holds
    // the size of `value`, so the kernel writes at most that much; any bytes it writes
    // form a valid T.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// setsockopt(2) with an `int` value, the shape of every socket option set here.
pub(crate) fn set_int_option(
    socket: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call and the length
    // passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
