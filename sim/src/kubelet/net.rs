//! Loopback addresses for nodes and pods.
//!
//! Each sim claims one /16 inside 127.64.0.0–127.254.255.255 (never 127.0.0.1) by binding
//! a listener on `127.X.0.1:10250` for its lifetime, so two sims side by side never pick the
//! same range. Node `i` gets host IP `127.X.0.(2+i)` and pod subnet `127.X.(10+i).0/24`.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

use rand::Rng;

const FIRST_OCTET: u8 = 64;
const LAST_OCTET: u8 = 254;
const CLAIM_PORT: u16 = 10250;
const CLAIM_ATTEMPTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("failed to claim a free loopback range 127.X.0.0/16 after {attempts} attempts")]
    Claim {
        attempts: usize,
        #[source]
        source: io::Error,
    },
    #[error("failed to place node {index}: the sim supports at most 200 nodes")]
    TooManyNodes { index: usize },
}

/// The sim's /16, held for as long as this value lives.
#[derive(Debug)]
pub struct Network {
    octet: u8,
    _claim: TcpListener,
}

impl Network {
    /// Claims a random free /16.
    pub fn claim() -> Result<Network, NetError> {
        let mut rng = rand::rng();
        let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no attempt made");
        for _ in 0..CLAIM_ATTEMPTS {
            let octet = rng.random_range(FIRST_OCTET..=LAST_OCTET);
            match TcpListener::bind(SocketAddrV4::new(
                Ipv4Addr::new(127, octet, 0, 1),
                CLAIM_PORT,
            )) {
                Ok(listener) => {
                    return Ok(Network {
                        octet,
                        _claim: listener,
                    });
                }
                Err(e) => last_error = e,
            }
        }
        Err(NetError::Claim {
            attempts: CLAIM_ATTEMPTS,
            source: last_error,
        })
    }

    pub fn octet(&self) -> u8 {
        self.octet
    }

    pub fn host_ip(&self, index: usize) -> Result<Ipv4Addr, NetError> {
        let last = u8::try_from(index + 2).map_err(|_| NetError::TooManyNodes { index })?;
        Ok(Ipv4Addr::new(127, self.octet, 0, last))
    }

    pub fn pod_pool(&self, index: usize) -> Result<IpPool, NetError> {
        let third = u8::try_from(index + 10)
            .ok()
            .filter(|t| *t < 250)
            .ok_or(NetError::TooManyNodes { index })?;
        Ok(IpPool::new(self.octet, third))
    }
}

/// Pod addresses of one node's /24; hands out .2 to .254 round-robin so a freed address
/// is not reused right away (as host-local IPAM does).
#[derive(Clone, Debug)]
pub struct IpPool {
    octet: u8,
    third: u8,
    next: u8,
    used: BTreeSet<u8>,
}

impl IpPool {
    pub fn new(octet: u8, third: u8) -> IpPool {
        IpPool {
            octet,
            third,
            next: 2,
            used: BTreeSet::new(),
        }
    }

    pub fn cidr(&self) -> String {
        format!("127.{}.{}.0/24", self.octet, self.third)
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        for _ in 2..=254u8 {
            let candidate = self.next;
            self.next = if self.next >= 254 { 2 } else { self.next + 1 };
            if self.used.insert(candidate) {
                return Some(Ipv4Addr::new(127, self.octet, self.third, candidate));
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        let [_, o, t, last] = ip.octets();
        if o == self.octet && t == self.third {
            self.used.remove(&last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_claims_get_different_ranges() {
        let a = Network::claim().expect("first");
        let b = Network::claim().expect("second");
        assert_ne!(a.octet(), b.octet());
        assert!((FIRST_OCTET..=LAST_OCTET).contains(&a.octet()));
    }

    #[test]
    fn pool_hands_out_distinct_addresses_and_reuses_only_after_wrapping() {
        let mut pool = IpPool::new(77, 11);
        let first = pool.allocate().expect("ip");
        assert_eq!(first, Ipv4Addr::new(127, 77, 11, 2));
        let second = pool.allocate().expect("ip");
        assert_ne!(first, second);
        pool.release(first);
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 77, 11, 4)));
        let mut all = IpPool::new(77, 12);
        let n = std::iter::from_fn(|| all.allocate()).count();
        assert_eq!(n, 253);
    }

    #[test]
    fn never_hands_out_localhost() {
        let net = Network::claim().expect("claim");
        let mut pool = net.pod_pool(0).expect("pool");
        let ip = pool.allocate().expect("ip");
        assert_ne!(ip, Ipv4Addr::LOCALHOST);
        assert_ne!(net.host_ip(0).expect("host"), Ipv4Addr::LOCALHOST);
    }
}
