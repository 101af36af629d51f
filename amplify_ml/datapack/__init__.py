"""The data pack: contract, reading and writing packs, validation."""

from amplify_ml.datapack.contract import CONTRACT_VERSION, TABLES, TableSchema, table_schema
from amplify_ml.datapack.pack import DataPack, Manifest, PackWriter, read_pack, write_pack

__all__ = [
    "CONTRACT_VERSION",
    "TABLES",
    "DataPack",
    "Manifest",
    "PackWriter",
    "TableSchema",
    "read_pack",
    "table_schema",
    "write_pack",
]
