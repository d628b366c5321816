//! The fixed parts of the fictitious company: regions, warehouses, product
//! categories with price ranges, and the words names are made from.

/// (code, name)
pub const REGIONS: [(&str, &str); 8] = [
    ("IDF", "Île-de-France"),
    ("ARA", "Auvergne-Rhône-Alpes"),
    ("NAQ", "Nouvelle-Aquitaine"),
    ("OCC", "Occitanie"),
    ("HDF", "Hauts-de-France"),
    ("GES", "Grand Est"),
    ("PAC", "Provence-Alpes-Côte d'Azur"),
    ("BRE", "Bretagne"),
];

/// (code, name, region index)
pub const WAREHOUSES: [(&str, &str, usize); 5] = [
    ("WH-PAR", "Paris Gennevilliers", 0),
    ("WH-LYO", "Lyon Saint-Priest", 1),
    ("WH-BDX", "Bordeaux Mérignac", 2),
    ("WH-LIL", "Lille Lesquin", 4),
    ("WH-MRS", "Marseille Vitrolles", 6),
];

/// Which warehouse ships to each region (by index into [`REGIONS`]).
pub const REGION_WAREHOUSE: [usize; 8] = [0, 1, 2, 2, 3, 3, 4, 0];

/// A product category: SKU prefix, name, list price range in euros, largest usual line quantity.
pub struct Category {
    pub prefix: &'static str,
    pub name: &'static str,
    pub price: (f64, f64),
    pub max_qty: u32,
    pub models: &'static [&'static str],
}

pub const CATEGORIES: [Category; 15] = [
    Category {
        prefix: "LAP",
        name: "Laptops",
        price: (399.0, 2899.0),
        max_qty: 4,
        models: &[
            "Book 13", "Book 14", "Pro 15", "Air 13", "Work 16", "Flex 14",
        ],
    },
    Category {
        prefix: "DSK",
        name: "Desktops",
        price: (449.0, 2199.0),
        max_qty: 4,
        models: &["Tower M", "Mini S", "Station X", "Compact 5"],
    },
    Category {
        prefix: "MON",
        name: "Monitors",
        price: (119.0, 949.0),
        max_qty: 6,
        models: &["24 FHD", "27 QHD", "27 4K", "32 4K", "34 UltraWide"],
    },
    Category {
        prefix: "KBD",
        name: "Keyboards",
        price: (14.9, 159.0),
        max_qty: 20,
        models: &["Slim", "Mechanical TKL", "Wireless Pro", "Ergo Split"],
    },
    Category {
        prefix: "MSE",
        name: "Mice",
        price: (9.9, 119.0),
        max_qty: 20,
        models: &["Optical", "Wireless 2", "Ergo Vertical", "Travel"],
    },
    Category {
        prefix: "NET",
        name: "Networking",
        price: (29.0, 849.0),
        max_qty: 8,
        models: &[
            "Switch 8p",
            "Switch 24p PoE",
            "Router AX",
            "Access Point 6E",
            "Firewall S",
        ],
    },
    Category {
        prefix: "STO",
        name: "Storage",
        price: (39.0, 649.0),
        max_qty: 10,
        models: &["SSD 1TB", "SSD 2TB", "NVMe 4TB", "HDD 8TB", "NAS 2-bay"],
    },
    Category {
        prefix: "PRN",
        name: "Printers",
        price: (79.0, 1290.0),
        max_qty: 3,
        models: &["Laser Mono", "Laser Color", "Inkjet MFP", "Label 4x6"],
    },
    Category {
        prefix: "PHN",
        name: "Smartphones",
        price: (149.0, 1349.0),
        max_qty: 6,
        models: &["A5", "A7", "Pro 6.1", "Max 6.7", "Rugged"],
    },
    Category {
        prefix: "TAB",
        name: "Tablets",
        price: (149.0, 1149.0),
        max_qty: 5,
        models: &["Tab 10", "Tab 11 Pro", "Tab 8 Kids", "Tab 13 Pro"],
    },
    Category {
        prefix: "CMP",
        name: "Components",
        price: (29.0, 899.0),
        max_qty: 10,
        models: &["RAM 16GB", "RAM 32GB", "GPU 8GB", "PSU 750W", "CPU 8-core"],
    },
    Category {
        prefix: "CBL",
        name: "Cables & adapters",
        price: (4.9, 59.0),
        max_qty: 30,
        models: &["USB-C 1m", "HDMI 2m", "DP 1.8m", "Cat6 5m", "USB-C hub"],
    },
    Category {
        prefix: "AUD",
        name: "Audio",
        price: (14.9, 399.0),
        max_qty: 10,
        models: &["Headset USB", "Earbuds ANC", "Speaker BT", "Conference Mic"],
    },
    Category {
        prefix: "SRV",
        name: "Servers",
        price: (1490.0, 8990.0),
        max_qty: 2,
        models: &["Rack 1U", "Rack 2U", "Tower T1", "Edge E2"],
    },
    Category {
        prefix: "SFT",
        name: "Software licences",
        price: (29.0, 499.0),
        max_qty: 25,
        models: &["Office 1y", "Antivirus 1y", "Backup 1y", "OS Pro"],
    },
];

pub const BRANDS: [&str; 16] = [
    "Aurora", "Nordtek", "Veltro", "Kestrel", "Lumina", "Orbis", "Praxis", "Solace", "Tessel",
    "Arcadia", "Helix", "Zenon", "Corvid", "Meridian", "Quanta", "Vireo",
];

pub const SUPPLIER_WORDS: [&str; 20] = [
    "Alpha", "Boreal", "Cobalt", "Delta", "Eiffel", "Fjord", "Granite", "Horizon", "Iris", "Jura",
    "Kappa", "Loire", "Mistral", "Nova", "Opale", "Pyrène", "Quartz", "Rhône", "Saphir", "Titan",
];

pub const SUPPLIER_KINDS: [&str; 5] = [
    "Distribution",
    "Components",
    "Logistique",
    "Electronics",
    "Import",
];

pub const RESELLER_WORDS: [&str; 16] = [
    "Informatique",
    "Micro",
    "Bureautique",
    "Réseaux",
    "Solutions",
    "Services",
    "Digital",
    "Systèmes",
    "Connect",
    "Office",
    "Tech",
    "Data",
    "Conseil",
    "Numérique",
    "Pro",
    "Expert",
];

pub const TOWNS: [&str; 24] = [
    "Paris",
    "Lyon",
    "Bordeaux",
    "Toulouse",
    "Lille",
    "Strasbourg",
    "Marseille",
    "Rennes",
    "Nantes",
    "Nice",
    "Grenoble",
    "Montpellier",
    "Reims",
    "Brest",
    "Metz",
    "Amiens",
    "Limoges",
    "Pau",
    "Annecy",
    "Avignon",
    "Caen",
    "Dijon",
    "Tours",
    "Nancy",
];

pub const ADJUSTMENT_REASONS: [&str; 4] = [
    "damaged in handling",
    "inventory count correction",
    "customer demo unit",
    "water damage write-off",
];

pub const CANCEL_REASONS: [&str; 3] = [
    "supplier discontinued the item",
    "duplicate order",
    "price not confirmed by supplier",
];
