//! The nodes' cgroup parents: `/sts-<run>/<node>` in every mounted hierarchy (cgroup v1 and
//! the unified one of a hybrid machine), made before a kubelet starts (it refuses a
//! `cgroupRoot` that does not exist) and removed, deepest first, when the run ends or when
//! a later run finds the owner dead.

use std::fs;
use std::path::{Path, PathBuf};

/// Every cgroup hierarchy's mount point (`cgroup` and `cgroup2` entries of mountinfo).
pub fn hierarchies() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_hierarchies(&text)
}

fn parse_hierarchies(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            matches!(fstype, "cgroup" | "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
                .flatten()
        })
        .collect()
}

/// Creates `relative` (e.g. `/sts-abc/upstream-worker`) in every hierarchy. In cpuset,
/// each new level copies its parent's cpus and mems (a new cpuset is empty, and no task
/// can join an empty one).
pub fn create(relative: &str) -> std::io::Result<()> {
    for root in hierarchies() {
        let mut dir = root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            let parent = dir.clone();
            dir.push(part);
            if dir.exists() {
                continue;
            }
            fs::create_dir(&dir)?;
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = fs::read_to_string(parent.join(file)) {
                    fs::write(dir.join(file), value.trim())?;
                }
            }
        }
    }
    Ok(())
}

/// Removes `relative` and everything below it in every hierarchy, deepest first. Only empty
/// cgroups can go: the caller has already killed the processes. Returns what stayed.
pub fn remove(relative: &str) -> Vec<PathBuf> {
    let mut left = vec![];
    for root in hierarchies() {
        let dir = root.join(relative.trim_start_matches('/'));
        if dir.exists() {
            remove_tree(&dir, &mut left);
        }
    }
    left
}

fn remove_tree(dir: &Path, left: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path(), left);
            }
        }
    }
    if fs::remove_dir(dir).is_err() && dir.exists() {
        left.push(dir.to_owned());
    }
}

/// Process ids still in `relative` or below, in any hierarchy (for the node-kill check).
pub fn pids(relative: &str) -> Vec<u32> {
    let mut pids = vec![];
    for root in hierarchies() {
        collect_pids(&root.join(relative.trim_start_matches('/')), &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    for entry in entries.filter_map(|e| e.ok()) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), pids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_are_the_cgroup_mounts_of_a_hybrid_machine() {
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
40 25 0:5 / /proc rw - proc proc rw";
        assert_eq!(
            parse_hierarchies(mountinfo),
            [
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
            ]
        );
    }

    #[test]
    fn a_tree_with_no_processes_is_removed_deepest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a/b/c");
        fs::create_dir_all(&deep).expect("mkdir");
        let mut left = vec![];
        remove_tree(&dir.path().join("a"), &mut left);
        assert!(left.is_empty(), "{left:?}");
        assert!(!dir.path().join("a").exists());
    }
}
