//! The nodes' network: one network namespace per node, joined to the host by a veth pair on
//! a per-run Linux bridge, each node routing its own pod block (its CNI bridge lives in its
//! namespace).
//!
//! ```text
//! host: bridge stsbr<hex> 10.X.0.1/24, routes 10.X.<i+1>.0/24 via node i
//!   ├─ veth sth<hex>-0 ── netns sts-<run>-<node0>: eth0 10.X.0.2/24, pods 10.X.1.0/24
//!   ├─ veth sth<hex>-1 ── netns sts-<run>-<node1>: eth0 10.X.0.3/24, pods 10.X.2.0/24
//!   └─ ...
//! ```
//!
//! `X` is the first /16 of 10.240.0.0/12 that nothing on the machine routes yet. Namespaces
//! get no default route; nothing touches the host's ip_forward, iptables or NAT: traffic
//! flows only between the host and the namespaces. Everything is removed by
//! [`PodNetwork::remove`] (or
//! on drop); a marker under `/run/sts-conformance/<run>` names the owning process so
//! [`cleanup_stale`] removes what a killed run left behind. Needs root.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Where run markers live (tmpfs: gone after a reboot, as are namespaces and links).
pub const STATE_DIR: &str = "/run/sts-conformance";

/// The Service range (`--service-cluster-ip-range`, kubeadm's default): nodes route it to
/// the host, where kube-proxy's rules in the node have already rewritten it.
pub const SERVICE_RANGE: &str = "10.96.0.0/12";

/// The /16 candidates: 10.240.0.0/16 ..= 10.255.0.0/16 (10.240.0.0/12).
const SECOND_OCTETS: std::ops::RangeInclusive<u8> = 240..=255;

/// Nodes per run: the link block 10.X.0.0/24 holds the host (.1) and nodes .2-.254.
const MAX_NODES: usize = 253;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "pod networking needs root (network namespaces, veth pairs, a bridge); running as uid {uid}: use the sim target or run as root"
    )]
    NotRoot { uid: u32 },
    #[error("failed to run `ip {args}`")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr}")]
    Ip { args: String, stderr: String },
    #[error("no free /16 in 10.240.0.0/12: every one is routed on this machine ({routed:?})")]
    NoFreeSubnet { routed: Vec<String> },
    #[error("node {node}: too many nodes (at most {MAX_NODES})")]
    TooManyNodes { node: String },
    #[error("failed to access {}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open network namespace {}", path.display())]
    OpenNamespace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid run id {0:?}: use 1-12 characters [a-z0-9]")]
    InvalidRunId(String),
}

impl NetnsError {
    /// Whether the error means "not root", so the caller can fall back to kube-sim.
    pub fn is_not_root(&self) -> bool {
        matches!(self, NetnsError::NotRoot { .. })
    }
}

/// Runs `ip` with `args`; returns stdout.
fn ip(args: &[&str]) -> Result<String, NetnsError> {
    let joined = args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Ip {
            args: joined,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn state_err(path: &Path) -> impl FnOnce(std::io::Error) -> NetnsError + '_ {
    move |source| NetnsError::State {
        path: path.to_owned(),
        source,
    }
}

/// A 4-hex-digit tag derived from the run id, for interface names (≤ 15 characters).
fn tag(run_id: &str) -> String {
    // FNV-1a, folded to 16 bits.
    let mut h: u32 = 0x811c9dc5;
    for b in run_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    format!("{:04x}", (h ^ (h >> 16)) & 0xffff)
}

/// A fresh random run id (8 hex digits).
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 4];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let v = u32::from_le_bytes(bytes) ^ t ^ std::process::id().rotate_left(16);
    format!("{v:08x}")
}

/// The owner marker: `<pid> <start time in clock ticks>`; the start time guards against a
/// reused pid.
fn owner_line() -> String {
    let pid = std::process::id();
    format!("{pid} {}", process_start_time(pid).unwrap_or(0))
}

fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the parenthesised command name (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn owner_alive(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let start: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    match process_start_time(pid) {
        None => false,
        Some(now) => start == 0 || now == start,
    }
}

/// A held `flock` on `/run/sts-conformance/.lock`, so two runs never pick the same /16.
struct StateLock {
    _file: fs::File,
}

impl StateLock {
    fn acquire() -> Result<StateLock, NetnsError> {
        let dir = Path::new(STATE_DIR);
        fs::create_dir_all(dir).map_err(state_err(dir))?;
        let path = dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(state_err(&path))?;
        // SAFETY: flock on an fd we own; blocks until the lock is free (held for
        // milliseconds by another run's create/cleanup).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(NetnsError::State {
                path,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(StateLock { _file: file })
    }
}

/// Every IPv4 prefix routed on the machine (all tables), as `a.b.c.d/len`.
fn routed_prefixes() -> Result<Vec<(Ipv4Addr, u8)>, NetnsError> {
    let out = ip(&["-4", "route", "show", "table", "all"])?;
    let mut prefixes = vec![];
    for line in out.lines() {
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or("");
        if matches!(
            first,
            "local" | "broadcast" | "unicast" | "anycast" | "multicast"
        ) {
            first = words.next().unwrap_or("");
        }
        if first == "default" {
            continue;
        }
        let (addr, len) = first.split_once('/').unwrap_or((first, "32"));
        if let (Ok(a), Ok(l)) = (addr.parse::<Ipv4Addr>(), len.parse::<u8>()) {
            prefixes.push((a, l));
        }
    }
    Ok(prefixes)
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1).min(32);
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    (u32::from(a.0) & mask) == (u32::from(b.0) & mask)
}

/// The first `10.X.0.0/16` in 10.240.0.0/12 that overlaps no routed prefix.
fn pick_second_octet(routed: &[(Ipv4Addr, u8)]) -> Option<u8> {
    SECOND_OCTETS.into_iter().find(|x| {
        let candidate = (Ipv4Addr::new(10, *x, 0, 0), 16);
        !routed.iter().any(|r| overlaps(*r, candidate))
    })
}

/// One node's namespace and address block: the node's address is on the link block
/// 10.X.0.0/24 and its pods' block 10.X.<i+1>.0/24 sits behind it.
#[derive(Debug)]
pub struct NodeNetwork {
    node: String,
    netns: String,
    host_veth: String,
    x: u8,
    third: u8,
}

impl NodeNetwork {
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The namespace's name (`ip netns` name, file under /run/netns).
    pub fn netns_name(&self) -> &str {
        &self.netns
    }

    /// The node's own address in its namespace: its InternalIP, 10.X.0.<i+2>.
    pub fn node_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.x, 0, self.third + 1)
    }

    /// The node's pod block, 10.X.<i+1>.0/24: its `podCIDR`.
    pub fn pod_cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.x, self.third)
    }

    /// The pods' gateway on the node's CNI bridge, 10.X.<i+1>.1.
    pub fn pod_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.x, self.third, 1)
    }

    /// The host end of the node's veth pair (on the bridge).
    pub fn host_veth(&self) -> &str {
        &self.host_veth
    }

    /// Makes `command` run inside this node's namespace: the namespace file is opened now
    /// (before fork) and the child calls `setns(2)` before exec, so the spawned pid is the
    /// program itself.
    pub fn enter(&self, command: &mut Command) -> Result<(), NetnsError> {
        let path = PathBuf::from("/run/netns").join(&self.netns);
        let file =
            fs::File::open(&path).map_err(|source| NetnsError::OpenNamespace { path, source })?;
        // SAFETY: the closure runs between fork and exec and only calls setns(2), which is
        // async-signal-safe; the fd is owned by the closure and is close-on-exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Runs `f` on a new thread that has entered this namespace (for listeners and
    /// connections made in-process, e.g. a TCP probe from the node's point of view).
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NetnsError> {
        let path = PathBuf::from("/run/netns").join(&self.netns);
        let file = fs::File::open(&path).map_err(|source| NetnsError::OpenNamespace {
            path: path.clone(),
            source,
        })?;
        let joined = std::thread::spawn(move || {
            // SAFETY: setns on an fd we own affects only this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(f())
        })
        .join();
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(NetnsError::OpenNamespace { path, source }),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The per-run bridge and every node's namespace. Dropping it removes them.
#[derive(Debug)]
pub struct PodNetwork {
    run_id: String,
    bridge: String,
    x: u8,
    nodes: BTreeMap<String, Arc<NodeNetwork>>,
    marker_dir: PathBuf,
    removed: bool,
}

impl PodNetwork {
    /// Creates the bridge and one namespace per node. The bridge carries only the link block
    /// 10.X.0.0/24 (host 10.X.0.1, node i 10.X.0.<i+2>); node i routes its pods' block
    /// 10.X.<i+1>.0/24 (its CNI bridge lives in its namespace), and the host and every other
    /// node reach that block through node i's address. Each node forwards (its own
    /// namespace's `ip_forward`; the host's is never touched) and sends the Service range to
    /// the host, where nothing forwards further: no route leaves the machine. `run_id`: 1-12
    /// characters [a-z0-9] (see [`new_run_id`]).
    pub fn create_routed(run_id: &str, node_names: &[String]) -> Result<PodNetwork, NetnsError> {
        let mut net = Self::create_bridge(run_id, node_names)?;
        let x = net.x;
        for (i, node) in node_names.iter().enumerate() {
            let third =
                u8::try_from(i + 1).map_err(|_| NetnsError::TooManyNodes { node: node.clone() })?;
            let node_net = net.add_node(node, i, third)?;
            let netns = node_net.netns_name().to_owned();
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{}/24", node_net.node_ip()),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            ip(&[
                "route",
                "add",
                &node_net.pod_cidr(),
                "via",
                &node_net.node_ip().to_string(),
                "dev",
                &net.bridge,
            ])?;
            ip(&[
                "-n",
                &netns,
                "route",
                "add",
                SERVICE_RANGE,
                "via",
                &format!("10.{x}.0.1"),
            ])?;
            node_net
                .run_in(|| fs::write("/proc/sys/net/ipv4/ip_forward", "1"))?
                .map_err(|source| NetnsError::State {
                    path: PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
                    source,
                })?;
        }
        let nodes: Vec<Arc<NodeNetwork>> = net.nodes.values().cloned().collect();
        for node in &nodes {
            for other in nodes.iter().filter(|o| o.node != node.node) {
                ip(&[
                    "-n",
                    &node.netns,
                    "route",
                    "add",
                    &other.pod_cidr(),
                    "via",
                    &other.node_ip().to_string(),
                ])?;
            }
        }
        tracing::info!(run = run_id, bridge = %net.bridge, host_ip = %net.host_ip(), nodes = node_names.len(), "routed pod network created");
        Ok(net)
    }

    /// The marker, the lock-protected choice of a free /16 and the bridge with the host's
    /// address (`10.X.0.1/24`).
    fn create_bridge(run_id: &str, node_names: &[String]) -> Result<PodNetwork, NetnsError> {
        let uid = euid();
        if uid != 0 {
            return Err(NetnsError::NotRoot { uid });
        }
        if run_id.is_empty()
            || run_id.len() > 12
            || !run_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(NetnsError::InvalidRunId(run_id.to_owned()));
        }
        if let Some(node) = node_names.get(MAX_NODES) {
            return Err(NetnsError::TooManyNodes { node: node.clone() });
        }
        let tag = tag(run_id);
        let bridge = format!("stsbr{tag}");
        let marker_dir = Path::new(STATE_DIR).join(run_id);

        let lock = StateLock::acquire()?;
        fs::create_dir_all(&marker_dir).map_err(state_err(&marker_dir))?;
        let owner = marker_dir.join("owner");
        fs::write(&owner, owner_line()).map_err(state_err(&owner))?;
        let bridge_file = marker_dir.join("bridge");
        fs::write(&bridge_file, &bridge).map_err(state_err(&bridge_file))?;

        // From here on, a failure drops `net`, which removes what exists.
        let mut net = PodNetwork {
            run_id: run_id.to_owned(),
            bridge: bridge.clone(),
            x: 0,
            nodes: BTreeMap::new(),
            marker_dir,
            removed: false,
        };
        let routed = routed_prefixes()?;
        let x = pick_second_octet(&routed).ok_or_else(|| NetnsError::NoFreeSubnet {
            routed: routed
                .iter()
                .filter(|(a, _)| a.octets()[0] == 10)
                .map(|(a, l)| format!("{a}/{l}"))
                .collect(),
        })?;
        net.x = x;
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("10.{x}.0.1/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        drop(lock);
        Ok(net)
    }

    /// Node `i`'s namespace, with its veth pair on the bridge and `lo` up (no address yet).
    fn add_node(
        &mut self,
        node: &str,
        i: usize,
        third: u8,
    ) -> Result<Arc<NodeNetwork>, NetnsError> {
        let netns = format!("sts-{}-{node}", self.run_id);
        let host_veth = format!("sth{}-{i}", tag(&self.run_id));
        ip(&["netns", "add", &netns])?;
        let node_net = Arc::new(NodeNetwork {
            node: node.to_owned(),
            netns: netns.clone(),
            host_veth: host_veth.clone(),
            x: self.x,
            third,
        });
        self.nodes.insert(node.to_owned(), node_net.clone());
        ip(&[
            "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])?;
        ip(&["link", "set", &host_veth, "master", &self.bridge, "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        Ok(node_net)
    }

    /// The host's address on the bridge (10.X.0.1): the API server binds and advertises it.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.x, 0, 1)
    }

    /// The whole block, `10.X.0.0/16`.
    pub fn cidr(&self) -> String {
        format!("10.{}.0.0/16", self.x)
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// Records a directory of this run (e.g. the run dir) in the marker, so that
    /// [`cleanup_stale`] also removes it when this process dies without cleaning up.
    pub fn note_owned_dir(&self, dir: &Path) -> Result<(), NetnsError> {
        use std::io::Write;
        let path = self.marker_dir.join("dirs");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(state_err(&path))?;
        writeln!(file, "{}", dir.display()).map_err(state_err(&path))
    }

    pub fn node(&self, name: &str) -> Option<Arc<NodeNetwork>> {
        self.nodes.get(name).cloned()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Arc<NodeNetwork>> {
        self.nodes.values()
    }

    /// Deletes every namespace (which deletes its veth pair), the bridge and the marker.
    /// Tries everything; returns the first error.
    pub fn remove(&mut self) -> Result<(), NetnsError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let mut first = None;
        for node in self.nodes.values() {
            // The veth first: deleting one end deletes its peer at once, whereas a deleted
            // namespace's interfaces go away asynchronously.
            if let Err(e) = remove_link(&node.host_veth) {
                first.get_or_insert(e);
            }
            if let Err(e) = remove_netns(&node.netns) {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = remove_link(&self.bridge) {
            first.get_or_insert(e);
        }
        if let Err(e) = fs::remove_dir_all(&self.marker_dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            first.get_or_insert(NetnsError::State {
                path: self.marker_dir.clone(),
                source: e,
            });
        }
        tracing::info!(run = %self.run_id, bridge = %self.bridge, "pod network removed");
        first.map_or(Ok(()), Err)
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::error!(run = %self.run_id, error = %crate::report(&e), "failed to remove the pod network");
        }
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Deletes a link; one that is already gone is fine.
fn remove_link(name: &str) -> Result<(), NetnsError> {
    if !link_exists(name) {
        return Ok(());
    }
    match ip(&["link", "del", name]) {
        Err(NetnsError::Ip { stderr, .. }) if !link_exists(name) => {
            tracing::debug!(link = name, %stderr, "link vanished while deleting it");
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

fn remove_netns(name: &str) -> Result<(), NetnsError> {
    if !Path::new("/run/netns").join(name).exists() {
        return Ok(());
    }
    ip(&["netns", "del", name]).map(|_| ())
}

/// Every network namespace name (`ip netns list`, first word of each line).
pub fn list_netns() -> Vec<String> {
    fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What [`cleanup_stale`] removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub runs: Vec<String>,
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    /// Directories the dead run recorded with [`PodNetwork::note_owned_dir`].
    pub dirs: Vec<PathBuf>,
}

/// Removes the namespaces, bridge and marker of every run whose owner process is gone.
/// Does nothing (Ok) when not root or when there is no state directory.
pub fn cleanup_stale() -> Result<Cleaned, NetnsError> {
    let mut cleaned = Cleaned::default();
    if euid() != 0 || !Path::new(STATE_DIR).exists() {
        return Ok(cleaned);
    }
    let _lock = StateLock::acquire()?;
    let dir = Path::new(STATE_DIR);
    let entries = fs::read_dir(dir).map_err(state_err(dir))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let run_dir = entry.path();
        if !run_dir.is_dir() {
            continue;
        }
        let run = entry.file_name().to_string_lossy().into_owned();
        let owner = fs::read_to_string(run_dir.join("owner")).unwrap_or_default();
        if owner_alive(&owner) {
            continue;
        }
        let t = tag(&run);
        let links: Vec<String> = fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("sth{t}-")) || *n == format!("stsbr{t}"))
                    .collect()
            })
            .unwrap_or_default();
        for link in links {
            remove_link(&link)?;
            cleaned.links.push(link);
        }
        let prefix = format!("sts-{run}-");
        for ns in list_netns().into_iter().filter(|n| n.starts_with(&prefix)) {
            remove_netns(&ns)?;
            cleaned.namespaces.push(ns);
        }
        let dirs = fs::read_to_string(run_dir.join("dirs")).unwrap_or_default();
        for dir in dirs.lines().map(Path::new).filter(|d| d.is_absolute()) {
            match fs::remove_dir_all(dir) {
                Ok(()) => cleaned.dirs.push(dir.to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(NetnsError::State {
                        path: dir.to_owned(),
                        source,
                    });
                }
            }
        }
        fs::remove_dir_all(&run_dir).map_err(state_err(&run_dir))?;
        tracing::info!(%run, "removed a stale pod network (its owner process is gone)");
        cleaned.runs.push(run);
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_unrouted_slash16_in_10_240_slash12() {
        let r = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            (a.parse().unwrap(), l.parse().unwrap())
        };
        assert_eq!(pick_second_octet(&[r("192.0.2.0/24")]), Some(240));
        assert_eq!(
            pick_second_octet(&[r("10.240.0.0/16"), r("10.241.3.0/24")]),
            Some(242)
        );
        assert_eq!(pick_second_octet(&[r("10.0.0.0/8")]), None);
        assert_eq!(pick_second_octet(&[r("10.240.0.0/13")]), Some(248));
        assert_eq!(pick_second_octet(&[r("10.240.0.5/32")]), Some(241));
    }

    #[test]
    fn tags_are_short_and_stable() {
        assert_eq!(tag("abc"), tag("abc"));
        assert_eq!(tag("abc").len(), 4);
        assert!(format!("sth{}-253", tag("x")).len() <= 15);
        assert!(format!("stsbr{}", tag("x")).len() <= 15);
    }

    #[test]
    fn owner_marker_recognises_this_process_and_not_a_dead_one() {
        assert!(owner_alive(&owner_line()));
        assert!(!owner_alive("999999999 1"));
        assert!(!owner_alive(""));
        let pid = std::process::id();
        assert!(!owner_alive(&format!("{pid} 1")), "reused pid");
    }

    #[test]
    fn run_ids_are_valid() {
        let id = new_run_id();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
