fn main() { let b = shelfguard_local::broker::EmbeddedBroker::start("memory://tansu/").unwrap(); println!("{}", b.bootstrap); std::thread::sleep(std::time::Duration::from_secs(3600)); }
