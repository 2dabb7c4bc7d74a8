// @adt/backup is filled by the "Backups and baselines" issue; nothing is exported yet.
export {};
