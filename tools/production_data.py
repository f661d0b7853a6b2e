"""The old rehearsal server's ``openboxes`` database: OpenBoxes' shape, generated.

The tables the backup snippet counts, with the columns, keys and foreign keys that matter to
a dump and a restore (text in several scripts, a utf8mb4 column among utf8 ones, binary
documents, bit and decimal columns, NULLs), plus a view, a trigger and a stored function that
run as the application's account. The same seed gives the same database, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import random

# The installation guide's account: views, triggers and routines of the old database run as it.
APP_ACCOUNT = "'openboxes'@'localhost'"
SEED = 20250118


SCHEMA = """\
CREATE TABLE DATABASECHANGELOG (
  ID varchar(255) NOT NULL,
  AUTHOR varchar(255) NOT NULL,
  FILENAME varchar(255) NOT NULL,
  DATEEXECUTED datetime NOT NULL,
  ORDEREXECUTED int NOT NULL,
  EXECTYPE varchar(10) NOT NULL,
  MD5SUM varchar(35) DEFAULT NULL,
  DESCRIPTION varchar(255) DEFAULT NULL,
  COMMENTS varchar(255) DEFAULT NULL,
  TAG varchar(255) DEFAULT NULL,
  LIQUIBASE varchar(20) DEFAULT NULL,
  CONTEXTS varchar(255) DEFAULT NULL,
  LABELS varchar(255) DEFAULT NULL,
  DEPLOYMENT_ID varchar(10) DEFAULT NULL
) ENGINE=InnoDB;

CREATE TABLE DATABASECHANGELOGLOCK (
  ID int NOT NULL,
  LOCKED bit(1) NOT NULL,
  LOCKGRANTED datetime DEFAULT NULL,
  LOCKEDBY varchar(255) DEFAULT NULL,
  PRIMARY KEY (ID)
) ENGINE=InnoDB;

CREATE TABLE location (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  name varchar(255) NOT NULL,
  location_number varchar(255) DEFAULT NULL,
  location_type varchar(50) NOT NULL,
  parent_location_id varchar(255) DEFAULT NULL,
  address text,
  active bit(1) NOT NULL,
  date_created datetime NOT NULL,
  last_updated datetime NOT NULL,
  PRIMARY KEY (id),
  KEY fk_location_parent (parent_location_id),
  CONSTRAINT fk_location_parent FOREIGN KEY (parent_location_id) REFERENCES location (id)
) ENGINE=InnoDB;

CREATE TABLE `user` (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  username varchar(255) NOT NULL,
  password varchar(255) NOT NULL,
  first_name varchar(255) NOT NULL,
  last_name varchar(255) NOT NULL,
  email varchar(255) DEFAULT NULL,
  locale varchar(10) DEFAULT NULL,
  active bit(1) NOT NULL,
  warehouse_id varchar(255) DEFAULT NULL,
  last_login_date datetime DEFAULT NULL,
  date_created datetime NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_user_username (username),
  CONSTRAINT fk_user_warehouse FOREIGN KEY (warehouse_id) REFERENCES location (id)
) ENGINE=InnoDB;

CREATE TABLE product (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  product_code varchar(255) NOT NULL,
  name varchar(255) NOT NULL,
  description text,
  unit_of_measure varchar(255) DEFAULT NULL,
  price_per_unit decimal(19,4) DEFAULT NULL,
  cold_chain bit(1) NOT NULL,
  active bit(1) NOT NULL,
  created_by_id varchar(255) DEFAULT NULL,
  date_created datetime NOT NULL,
  last_updated datetime NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_product_code (product_code),
  CONSTRAINT fk_product_created_by FOREIGN KEY (created_by_id) REFERENCES `user` (id)
) ENGINE=InnoDB;

CREATE TABLE inventory_item (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  product_id varchar(255) NOT NULL,
  lot_number varchar(255) DEFAULT NULL,
  expiration_date date DEFAULT NULL,
  date_created datetime NOT NULL,
  last_updated datetime NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT fk_inventory_item_product FOREIGN KEY (product_id) REFERENCES product (id)
) ENGINE=InnoDB;

-- Its comment column came with a later migration, on a server whose default was utf8mb4.
CREATE TABLE `transaction` (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  transaction_number varchar(255) NOT NULL,
  transaction_type varchar(255) NOT NULL,
  transaction_date datetime NOT NULL,
  inventory_location_id varchar(255) NOT NULL,
  source_id varchar(255) DEFAULT NULL,
  destination_id varchar(255) DEFAULT NULL,
  created_by_id varchar(255) NOT NULL,
  comment varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci DEFAULT NULL,
  date_created datetime NOT NULL,
  last_updated datetime NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_transaction_number (transaction_number),
  CONSTRAINT fk_transaction_inventory FOREIGN KEY (inventory_location_id) REFERENCES location (id),
  CONSTRAINT fk_transaction_source FOREIGN KEY (source_id) REFERENCES location (id),
  CONSTRAINT fk_transaction_destination FOREIGN KEY (destination_id) REFERENCES location (id),
  CONSTRAINT fk_transaction_created_by FOREIGN KEY (created_by_id) REFERENCES `user` (id)
) ENGINE=InnoDB;

CREATE TABLE transaction_entry (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  transaction_id varchar(255) NOT NULL,
  inventory_item_id varchar(255) NOT NULL,
  product_id varchar(255) NOT NULL,
  bin_location_id varchar(255) DEFAULT NULL,
  quantity decimal(19,4) NOT NULL,
  comments varchar(255) DEFAULT NULL,
  PRIMARY KEY (id),
  CONSTRAINT fk_entry_transaction FOREIGN KEY (transaction_id) REFERENCES `transaction` (id),
  CONSTRAINT fk_entry_inventory_item FOREIGN KEY (inventory_item_id)
    REFERENCES inventory_item (id),
  CONSTRAINT fk_entry_product FOREIGN KEY (product_id) REFERENCES product (id),
  CONSTRAINT fk_entry_bin_location FOREIGN KEY (bin_location_id) REFERENCES location (id)
) ENGINE=InnoDB;

CREATE TABLE shipment (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  name varchar(255) NOT NULL,
  shipment_number varchar(255) NOT NULL,
  origin_id varchar(255) NOT NULL,
  destination_id varchar(255) NOT NULL,
  expected_shipping_date datetime DEFAULT NULL,
  current_status varchar(255) NOT NULL,
  total_value decimal(19,2) DEFAULT NULL,
  additional_information text,
  created_by_id varchar(255) NOT NULL,
  date_created datetime NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_shipment_number (shipment_number),
  CONSTRAINT fk_shipment_origin FOREIGN KEY (origin_id) REFERENCES location (id),
  CONSTRAINT fk_shipment_destination FOREIGN KEY (destination_id) REFERENCES location (id),
  CONSTRAINT fk_shipment_created_by FOREIGN KEY (created_by_id) REFERENCES `user` (id)
) ENGINE=InnoDB;

CREATE TABLE requisition (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  name varchar(255) NOT NULL,
  request_number varchar(255) NOT NULL,
  origin_id varchar(255) NOT NULL,
  destination_id varchar(255) NOT NULL,
  requested_by_id varchar(255) NOT NULL,
  status varchar(255) NOT NULL,
  date_requested datetime NOT NULL,
  description text,
  date_created datetime NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_request_number (request_number),
  CONSTRAINT fk_requisition_origin FOREIGN KEY (origin_id) REFERENCES location (id),
  CONSTRAINT fk_requisition_destination FOREIGN KEY (destination_id) REFERENCES location (id),
  CONSTRAINT fk_requisition_requested_by FOREIGN KEY (requested_by_id) REFERENCES `user` (id)
) ENGINE=InnoDB;

CREATE TABLE document (
  id varchar(255) NOT NULL,
  version bigint NOT NULL,
  name varchar(255) NOT NULL,
  filename varchar(255) NOT NULL,
  content_type varchar(255) NOT NULL,
  file_content longblob,
  size bigint NOT NULL,
  date_created datetime NOT NULL,
  last_updated datetime NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB;

CREATE TABLE shipment_document (
  shipment_id varchar(255) NOT NULL,
  document_id varchar(255) NOT NULL,
  PRIMARY KEY (shipment_id, document_id),
  CONSTRAINT fk_shipment_document_shipment FOREIGN KEY (shipment_id) REFERENCES shipment (id),
  CONSTRAINT fk_shipment_document_document FOREIGN KEY (document_id) REFERENCES document (id)
) ENGINE=InnoDB;
"""

# Created after the data, as the application's migrations did, and run as its account.
STORED_CODE = f"""\
CREATE DEFINER={APP_ACCOUNT} SQL SECURITY DEFINER VIEW product_stock AS
  SELECT p.id AS product_id, p.product_code, p.name, SUM(te.quantity) AS quantity
    FROM product p JOIN transaction_entry te ON te.product_id = p.id
   GROUP BY p.id, p.product_code, p.name;

CREATE DEFINER={APP_ACCOUNT} TRIGGER product_version_before_update
  BEFORE UPDATE ON product FOR EACH ROW SET NEW.version = OLD.version + 1;

CREATE DEFINER={APP_ACCOUNT} FUNCTION quantity_on_hand(p_product_id varchar(255))
  RETURNS decimal(19,4) READS SQL DATA
  RETURN (SELECT COALESCE(SUM(quantity), 0) FROM transaction_entry
           WHERE product_id = p_product_id);
"""

# Row counts of the generated database (its other tables: DATABASECHANGELOGLOCK, one row;
# shipment_document, one per document).
ROWS = {
    "DATABASECHANGELOG": 1250,
    "location": 420,
    "user": 280,
    "product": 6000,
    "inventory_item": 15000,
    "transaction": 9000,
    "transaction_entry": 45000,
    "shipment": 2400,
    "requisition": 3100,
    "document": 160,
}

WORDS = (
    "Paracétamol",
    "Ibuprofène",
    "Amoxicilline",
    "Solución salina",
    "Ácido fólico",
    "Sérum physiologique",
    "Gaze stérile",
    "Seringue 5 mL",
    "Gants nitrile",
    "Jeringa 10 mL",
    "Vacina BCG",
    "Tétanos",
    "Métronidazole",
    "Zinc 20 mg",
    "口罩",
    "手套",
    "注射器",
    "绷带",
    "Ωmega-3",
    "Ñandú",
    "Łódź kit",
    "Ørsted pack",
    "Bandage 10cm×4m",
    "Cotrimoxazole",
)
PLACES = (
    "Boston",
    "Port-au-Prince",
    "Kigali",
    "Lilongwe",
    "São Paulo",
    "Bogotá",
    "Mirebalais",
    "Hinche",
    "Zürich",
    "Malmö",
    "Kraków",
    "Düsseldorf",
    "東京",
    "北京",
    "Ciudad de México",
)
FIRST = ("Ana", "José", "François", "Zoë", "Björn", "Chloé", "Jürgen", "Renée", "Siân", "明")
LAST = ("Pérez", "O'Brien", "Müller", "Ndiaye", "Łukasz", "Çelik", "Núñez", "Dubois", "王", "Kim")
# utf8 (utf8mb3) columns hold no character beyond three bytes: emoji only in utf8mb4 ones.
NOTES = (
    "Received in good condition",
    'Box labelled "urgent"',
    "Backslash \\ in a path C:\\temp",
    "Two lines:\nfirst\tand second",
    "Livraison reçue à l'entrepôt",
    "Caja dañada, ver foto",
    "已收到",
    "Température ≤ 8 °C",
    None,
)
EMOJI_NOTES = (*NOTES, "Received in good condition ✅", "Counted twice 🔢", "Cold chain kept ❄️")
TRANSACTION_TYPES = ("Transfer in", "Transfer out", "Inventory", "Consumption", "Expiration")
STATUSES = ("PENDING", "SHIPPED", "RECEIVED", "PARTIALLY_RECEIVED")
REQUISITION_STATUSES = ("CREATED", "VERIFYING", "PICKING", "CHECKING", "ISSUED", "CANCELED")
CONTENT_TYPES = (
    ("application/pdf", "pdf"),
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("text/csv", "csv"),
)


def sql_string(value: str) -> str:
    """A string as a quoted SQL literal (backslash escapes, the server's default mode)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
        .replace("\x1a", "\\Z")
    )
    return f"'{escaped}'"


def value(v: object) -> str:
    """A Python value as an SQL literal."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "b'1'" if v else "b'0'"
    if isinstance(v, bytes):
        return "X'" + v.hex() + "'" if v else "''"
    if isinstance(v, int | float):
        return str(v)
    return sql_string(str(v))


Row = tuple[object, ...]


class Generator:
    """Writes the database's SQL, table by table, from one random sequence."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.epoch = dt.datetime(2016, 1, 4, 8, 0, 0)
        self.out: list[str] = [SCHEMA]

    def uid(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def when(self, days: int = 3000) -> str:
        moment = self.epoch + dt.timedelta(seconds=self.rng.randrange(days * 86400))
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def insert(self, table: str, rows: list[Row], per: int = 500) -> None:
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            values = ",\n".join("(" + ",".join(value(v) for v in row) + ")" for row in chunk)
            self.out.append(f"INSERT INTO `{table}` VALUES\n{values};\n")

    def changelog(self) -> None:
        rng = self.rng
        rows: list[Row] = []
        for n in range(ROWS["DATABASECHANGELOG"]):
            rows.append(
                (
                    f"{1300000000000 + n * 7919}-{n}",
                    rng.choice(("jmiranda", "openboxes", "awalkowiak", "liquibase-docs")),
                    f"0.{5 + n // 150}.x/changelog-{n // 40:03d}.xml",
                    self.when(),
                    n + 1,
                    "EXECUTED",
                    f"8:{rng.getrandbits(128):032x}",
                    rng.choice(("addColumn", "createTable", "sql", "createIndex", "dropColumn")),
                    "",
                    None,
                    "3.10.3",
                    None,
                    None,
                    f"{rng.randrange(10**10):010d}",
                )
            )
        self.insert("DATABASECHANGELOG", rows)
        self.insert("DATABASECHANGELOGLOCK", [(1, False, None, None)])

    def locations(self) -> tuple[list[str], list[str]]:
        """Depots, then bins inside them; return both lists of ids."""
        rng = self.rng
        rows: list[Row] = []
        depots: list[str] = []
        bins: list[str] = []
        for n in range(ROWS["location"]):
            lid = self.uid()
            place = rng.choice(PLACES)
            created = self.when()
            name, kind, parent, address = (
                (f"{place} depot {n}", "DEPOT", None, f"{n} Rue de l'Hôpital\n{place}")
                if n < 30
                else (f"Bin {chr(65 + n % 26)}-{n:04d}", "BIN_LOCATION", rng.choice(depots), None)
            )
            (depots if kind == "DEPOT" else bins).append(lid)
            rows.append((lid, 0, name, f"L{n:05d}", kind, parent, address, True, created, created))
        self.insert("location", rows)
        return depots, bins

    def users(self, depots: list[str]) -> list[str]:
        rng = self.rng
        rows: list[Row] = []
        for n in range(ROWS["user"]):
            rows.append(
                (
                    self.uid(),
                    n % 5,
                    f"user{n:04d}",
                    f"{rng.getrandbits(160):040x}",
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    f"user{n:04d}@example.org" if n % 7 else None,
                    rng.choice(("en", "fr", "es", "pt", "zh")),
                    n % 11 != 0,
                    rng.choice(depots),
                    self.when() if n % 3 else None,
                    self.when(),
                )
            )
        self.insert("user", rows)
        return [str(row[0]) for row in rows]

    def products(self, users: list[str]) -> list[Row]:
        """Products and their inventory items; return the items."""
        rng = self.rng
        products: list[Row] = []
        for n in range(ROWS["product"]):
            created = self.when()
            products.append(
                (
                    self.uid(),
                    rng.randrange(20),
                    f"PR{n:06d}",
                    f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}",
                    rng.choice(NOTES) if n % 4 else None,
                    rng.choice(("EA", "BX", "Tablet", "Vial", "mL")),
                    f"{rng.randrange(1, 10**7) / 100:.4f}",
                    n % 13 == 0,
                    n % 17 != 0,
                    rng.choice(users),
                    created,
                    created,
                )
            )
        self.insert("product", products)
        items: list[Row] = []
        for n in range(ROWS["inventory_item"]):
            # Every product has an item; the rest go to random products.
            product = products[n][0] if n < len(products) else rng.choice(products)[0]
            expires = self.epoch + dt.timedelta(days=rng.randrange(4000))
            created = self.when()
            items.append(
                (
                    self.uid(),
                    0,
                    product,
                    f"LOT-{rng.randrange(10**6):06d}" if n % 5 else None,
                    expires.strftime("%Y-%m-%d") if n % 3 else None,
                    created,
                    created,
                )
            )
        self.insert("inventory_item", items)
        return items

    def transactions(
        self, depots: list[str], bins: list[str], users: list[str], items: list[Row]
    ) -> None:
        rng = self.rng
        transactions: list[Row] = []
        for n in range(ROWS["transaction"]):
            kind = rng.choice(TRANSACTION_TYPES)
            created = self.when()
            transactions.append(
                (
                    self.uid(),
                    0,
                    f"T{n:07d}",
                    kind,
                    created,
                    rng.choice(depots),
                    rng.choice(depots) if kind == "Transfer in" else None,
                    rng.choice(depots) if kind == "Transfer out" else None,
                    rng.choice(users),
                    rng.choice(EMOJI_NOTES),
                    created,
                    created,
                )
            )
        self.insert("transaction", transactions)
        entries: list[Row] = []
        for n in range(ROWS["transaction_entry"]):
            item = rng.choice(items)
            entries.append(
                (
                    self.uid(),
                    0,
                    transactions[n % len(transactions)][0],
                    item[0],
                    item[2],
                    rng.choice(bins) if n % 4 else None,
                    f"{rng.randrange(-5000, 100000) / 10:.4f}",
                    rng.choice((*NOTES[:4], None, None)),
                )
            )
        self.insert("transaction_entry", entries, per=1000)

    def movements(self, depots: list[str], users: list[str]) -> list[str]:
        """Shipments and requisitions between depots; return the shipments' ids."""
        rng = self.rng
        shipments: list[Row] = []
        for n in range(ROWS["shipment"]):
            origin, destination = rng.sample(depots, 2)
            shipments.append(
                (
                    self.uid(),
                    rng.randrange(8),
                    f"Shipment {n} → {rng.choice(PLACES)}",
                    f"SH{n:06d}",
                    origin,
                    destination,
                    self.when() if n % 6 else None,
                    rng.choice(STATUSES),
                    f"{rng.randrange(10**8) / 100:.2f}",
                    rng.choice(NOTES),
                    rng.choice(users),
                    self.when(),
                )
            )
        self.insert("shipment", shipments)
        requisitions: list[Row] = []
        for n in range(ROWS["requisition"]):
            origin, destination = rng.sample(depots, 2)
            requisitions.append(
                (
                    self.uid(),
                    rng.randrange(5),
                    f"Réquisition {n} — {rng.choice(WORDS)}",
                    f"R{n:06d}",
                    origin,
                    destination,
                    rng.choice(users),
                    rng.choice(REQUISITION_STATUSES),
                    self.when(),
                    rng.choice(NOTES),
                    self.when(),
                )
            )
        self.insert("requisition", requisitions)
        return [str(row[0]) for row in shipments]

    def documents(self, shipments: list[str]) -> None:
        rng = self.rng
        rows: list[Row] = []
        for n in range(ROWS["document"]):
            content_type, extension = rng.choice(CONTENT_TYPES)
            # Every byte value occurs, NUL, quote, backslash and newline included: a dump
            # without --hex-blob or through a wrong character set would show here.
            content = bytes(range(256)) + rng.randbytes(rng.randrange(0, 48 * 1024))
            created = self.when()
            rows.append(
                (
                    self.uid(),
                    0,
                    f"Bon de livraison n°{n}",
                    f"document-{n:04d}.{extension}",
                    content_type,
                    content,
                    len(content),
                    created,
                    created,
                )
            )
        self.insert("document", rows, per=20)
        links: list[Row] = [
            (shipments[n * 7 % len(shipments)], row[0]) for n, row in enumerate(rows)
        ]
        self.insert("shipment_document", links)


def openboxes_sql(seed: int = SEED) -> str:
    """The old server's database, schema, data and stored code, as one SQL script."""
    data = Generator(seed)
    data.changelog()
    depots, bins = data.locations()
    users = data.users(depots)
    items = data.products(users)
    data.transactions(depots, bins, users, items)
    shipments = data.movements(depots, users)
    data.documents(shipments)
    data.out.append(STORED_CODE)
    return "".join(data.out)
