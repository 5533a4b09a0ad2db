//! The contract: protobuf messages of every topic (generated from `proto/`) and the topic catalogue.
#![allow(clippy::all)]

pub mod limits;
pub mod time;
pub mod topics;
pub mod validate;

/// Generated code, laid out as the proto packages (`shelfguard.<area>.v1`).
pub mod shelfguard {
    pub mod catalog {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.catalog.v1.rs"));
        }
    }
    pub mod store {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.store.v1.rs"));
        }
    }
    pub mod warehouse {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.warehouse.v1.rs"));
        }
    }
    pub mod inventory {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.inventory.v1.rs"));
        }
    }
    pub mod stockout {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.stockout.v1.rs"));
        }
    }
    pub mod floor {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.floor.v1.rs"));
        }
    }
    pub mod state {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/shelfguard.state.v1.rs"));
        }
    }
}

pub use shelfguard::catalog::v1 as catalog;
pub use shelfguard::floor::v1 as floor;
pub use shelfguard::inventory::v1 as inventory;
pub use shelfguard::state::v1 as state;
pub use shelfguard::stockout::v1 as stockout;
pub use shelfguard::store::v1 as store;
pub use shelfguard::warehouse::v1 as warehouse;

pub use prost::Message;
