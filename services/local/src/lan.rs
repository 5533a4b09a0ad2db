//! Console URLs a phone on the shop Wi-Fi can open (127.0.0.1 only works on this machine).
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// This machine's IPv4 address on its network: the source address the system picks for a route
/// to a public address (connecting a UDP socket only chooses the route; no packet is sent).
/// `None` without a network.
pub fn lan_ipv4() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(8, 8, 8, 8), 53)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// How to print the console URLs for a console listening on `listen` (`FLOOR_HTTP_ADDR`).
#[derive(Debug, PartialEq, Eq)]
pub struct ConsoleUrls {
    /// `http://host:port` of the per-store URLs.
    pub base: String,
    /// One more line about phones, if needed.
    pub note: Option<String>,
}

pub fn console_urls(listen: &str, lan: Option<Ipv4Addr>) -> ConsoleUrls {
    let Ok(addr) = listen.parse::<SocketAddr>() else {
        // A host name: printed as given.
        return ConsoleUrls {
            base: format!("http://{listen}"),
            note: None,
        };
    };
    let port = addr.port();
    let lan_base = lan.map(|ip| format!("http://{ip}:{port}"));
    let local = format!("http://127.0.0.1:{port}");
    if addr.ip().is_unspecified() {
        match lan_base {
            Some(base) => ConsoleUrls {
                base,
                note: Some(format!(
                    "  (on this machine {local}/stores/<store> works too)"
                )),
            },
            None => ConsoleUrls {
                base: local,
                note: Some(
                    "  (no LAN address found for phones: is this machine on a network?)".into(),
                ),
            },
        }
    } else if addr.ip().is_loopback() {
        let phones = lan_base.map_or("this machine's LAN address".into(), |b| b + "/stores/…");
        ConsoleUrls {
            base: format!("http://{addr}"),
            note: Some(format!(
                "Phones on the shop Wi-Fi: the console listens on {} only; run with FLOOR_HTTP_ADDR=0.0.0.0:{port} and open {phones} (same tokens).",
                addr.ip()
            )),
        }
    } else {
        ConsoleUrls {
            base: format!("http://{addr}"),
            note: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAN: Option<Ipv4Addr> = Some(Ipv4Addr::new(192, 168, 1, 20));

    #[test]
    fn loopback_keeps_its_urls_and_names_the_setting_for_phones() {
        let u = console_urls("127.0.0.1:8081", LAN);
        assert_eq!(u.base, "http://127.0.0.1:8081");
        let note = u.note.unwrap();
        assert!(note.contains("FLOOR_HTTP_ADDR=0.0.0.0:8081"), "{note}");
        assert!(note.contains("http://192.168.1.20:8081/stores/"), "{note}");
        let note = console_urls("127.0.0.1:8081", None).note.unwrap();
        assert!(note.contains("FLOOR_HTTP_ADDR=0.0.0.0:8081"), "{note}");
    }

    #[test]
    fn all_interfaces_print_the_lan_address() {
        let u = console_urls("0.0.0.0:9000", LAN);
        assert_eq!(u.base, "http://192.168.1.20:9000");
        assert!(u.note.unwrap().contains("http://127.0.0.1:9000"));
        assert_eq!(
            console_urls("0.0.0.0:9000", None).base,
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            console_urls("[::]:9000", LAN).base,
            "http://192.168.1.20:9000"
        );
    }

    #[test]
    fn a_chosen_address_is_printed_as_is() {
        assert_eq!(
            console_urls("10.0.0.5:8081", LAN),
            ConsoleUrls {
                base: "http://10.0.0.5:8081".into(),
                note: None
            }
        );
        assert_eq!(
            console_urls("shop-pc:8081", LAN).base,
            "http://shop-pc:8081"
        );
    }

    #[test]
    fn the_lan_address_is_never_loopback() {
        // Without a network there is none; with one it is a real interface's.
        if let Some(ip) = lan_ipv4() {
            assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
        }
    }
}
