"""Event storage: where converted device data waits until the platform acknowledged it."""
from thingsboard_gateway.storage.base import Batch, EventStorage, StorageFull  # noqa: F401


def create_storage(config, stats=None):
    """The EventStorage for a validated `storage` config section."""
    kind = config.get("type", "memory")
    if kind == "memory":
        from thingsboard_gateway.storage.memory import MemoryEventStorage
        return MemoryEventStorage(config["max_records_count"], stats=stats)
    if kind == "file":
        from thingsboard_gateway.storage.file import FileEventStorage
        return FileEventStorage(config["data_folder_path"], max_records_per_file=config["max_records_per_file"],
                                max_file_size=config.get("max_file_size"), max_file_count=config["max_file_count"],
                                commit_interval=config["commit_interval_ms"] / 1000.0,
                                commit_records=config["commit_records"], overflow=config["overflow"], stats=stats)
    if kind == "sqlite":
        from thingsboard_gateway.storage.sqlite import SqliteEventStorage
        return SqliteEventStorage(config["data_file_path"], ttl_days=config["messages_ttl_in_days"],
                                  ttl_check_hours=config["messages_ttl_check_in_hours"],
                                  commit_interval=config["commit_interval_ms"] / 1000.0,
                                  commit_records=config["commit_records"], stats=stats)
    from thingsboard_gateway.config.errors import ConfigError
    raise ConfigError("tb_gateway.json", "storage.type", "storage type %r is not supported yet (use \"memory\")"
                      % kind)
