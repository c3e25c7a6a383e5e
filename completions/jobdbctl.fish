# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jobdbctl_global_optspecs
    string join \n database-url= configdir= data-dir= profile= schema= stale-after= json q/quiet v/verbose log-file= h/help V/version
end

function __fish_jobdbctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jobdbctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jobdbctl_using_subcommand
    set -l cmd (__fish_jobdbctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "init" -d 'Create the embedded cluster (if absent) and the job schema. Idempotent'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "start" -d 'Start the embedded server and wait until it accepts connections'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "stop" -d 'Stop the embedded server and wait for it to exit'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "restart" -d 'Stop the embedded server (if running) and start it again, e.g. after changing postgresql.conf or the port. Never creates a cluster'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "status" -d 'Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers, unfinished background migrations'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "show-params" -d 'Show the last used job ID, the job-ID high-water mark, schema version, server and data paths, and the effective configuration with where each value came from. Works without a job schema. Passwords are shown as ********'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "conninfo" -d 'Print how an engine or psql connects to the job database: for the embedded cluster its Unix socket (a libpq URL and a psql command that works as printed) and, when listen_addresses is set, its TCP address; for any other server its URL without the password'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "destroy" -d 'Drop the job database: every object of the profile\'s schema. With --cluster, also remove the embedded cluster. The last used job ID is printed and recorded first as the job-ID high-water mark, which survives (`restore --avoid-id-reuse` continues above it). Afterwards `init` gives an empty database whose job IDs start at 1'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "set-job-counter" -d 'Make N the last used job ID, so the next job gets N+1 (avoids reusing job IDs after a downgrade restore). Refuses N below the highest existing job ID, the current counter or the job-ID high-water mark (IDs would be reused) unless --force'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "unlock-stale-jobs" -d 'Release job and queue locks held by workers that are not live, so their jobs run again'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "finalize-migration" -d 'Run the remaining batches of a batched background migration until it is finished'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "background-migrations" -d 'List, inspect, pause, resume, retry or skip batched background migrations'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "migrate" -d 'Apply pending schema versions, each in its own transaction. Refuses a version whose background migration is unfinished (unless --finalize) and, before a breaking version, tells workers (pg_notify \'jobdb_migrate\') and waits until no live worker runs an older version'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "backup" -d 'Back up the job database to an archive (.tar.gz by default, .tar.zst or .tar with --compression): an online, consistent snapshot of the job schema (default), or a cold copy of the embedded cluster\'s data directory'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "restore" -d 'Restore a backup archive. An online archive is loaded into a staging schema, checked while loading, and swapped for the job schema in one transaction; a cold archive replaces the embedded cluster\'s data directory; a physical archive is recovered with the archived WAL (to a point with --to-time, --to-name, --to-lsn or --to-end) beside the data directory and swapped in. A failed or interrupted restore leaves the database as it was'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "verify" -d 'Check an archive completely without a database. Exit 5 when anything is wrong'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "job-logs" -d 'List, and with --delete remove, the engine\'s per-job log directories of jobs whose ID is above N: the IDs a restored (or new) job database hands out again, whose old log files the engine would otherwise append to. Symbolic links are never followed: a linked user or job directory is reported and skipped. Needs no database'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "purge-jobs" -d 'Delete finished jobs older than a cut-off, in short batches, optionally moving them into month archive tables first'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "purge-archive" -d 'Drop archived job months up to and including a month'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "vacuum" -d 'VACUUM the job tables and report dead tuples and size before and after'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "logs" -d 'Show, follow or purge the embedded server\'s log files'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "backups" -d 'The backup catalog: list the archives in the backup directory (default), check them completely, or prune old ones'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "wal-push" -d 'Archive one WAL file: what the embedded server\'s archive_command runs (jobdbctl start sets it when wal_archive is configured). Exits 0 only once the file is durably stored, compressed and checksummed, in the archive directory or bucket, and read back; a file archived before with the same contents is success, with other contents a failure (never replaced). Reads no configuration file: a bucket\'s settings and keys come from the environment (AWS_*, JOBDBCTL_S3_ADDRESSING), which jobdbctl start gives the server'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "wal-fetch" -d 'Restore one archived WAL file: what the embedded server\'s restore_command runs during recovery. The file is checked against its checksum before it appears under DEST. A file that is not archived exits 1 without a word: that is how recovery finds the archive\'s end. Reads no configuration file: a bucket\'s settings and keys come from the environment (AWS_*, JOBDBCTL_S3_ADDRESSING), which jobdbctl start gives the server'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, …) to stdout, or install them'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "man" -d 'Generate the man pages: the main page to stdout, every page into --out-dir, or install them where `man` finds them'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l schema-version -d 'Create this schema version instead of the latest (to rehearse an upgrade)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l timeout -d 'Give up waiting after this long (exit 6; the server goes on starting)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l create -d 'Create the cluster if the data directory holds none, as `init` does'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l mode -d 'How to shut down' -r -f -a "smart\t'Wait for clients to disconnect'
fast\t'Roll back open transactions and shut down cleanly'
immediate\t'Abort without a clean shutdown; crash recovery runs on next start'"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l timeout -d 'Give up waiting after this long (exit 1)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l mode -d 'How to shut down before starting again' -r -f -a "smart\t'Wait for clients to disconnect'
fast\t'Roll back open transactions and shut down cleanly'
immediate\t'Abort without a clean shutdown; crash recovery runs on next start'"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l timeout -d 'Give up waiting for the stop, and then for the start, after this long each (exit 1 while stopping, 6 while starting)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restart" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l check -d 'Exit 4 unless ready to upgrade: server up, no unfinished background migration, no stale lock (counted exactly, even where that reads a whole Graphile Worker jobs table)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l exact -d 'Count every state exactly (a full scan of the jobs table) instead of estimating the big ones from planner statistics or a sample'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand conninfo" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l backup-first -d 'Write a backup archive to PATH first (online; cold when the embedded server is stopped) and destroy only if it succeeded. backup --keep never deletes this archive' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l cluster -d 'Also stop the embedded server and remove its cluster (<data dir>/psql). Kept beside it: the backups directory and the job-ID high-water mark. A stopped server is started briefly to read its last used job ID'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l force -d 'Destroy even while workers are live'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l dry-run -d 'Show what would be destroyed and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l force -d 'Allow IDs to be reused: N below the highest existing job ID, the current counter or the job-ID high-water mark'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l dry-run -d 'Show what would change and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l worker -d 'Release only the locks of these workers (repeatable)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l older-than -d 'Locks older than this count as stale whatever the registry says (e.g. 4h, 90m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l dry-run -d 'Show what would be released and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l force -d 'With --worker: release workers that are still live too'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l prune-workers -d 'Also delete the registry rows of workers that are not live (native profile)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand unlock-stale-jobs" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l id -d 'The migration\'s id (see `background-migrations list`)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l batch-size -d 'Values of the batching column per batch transaction, to start with (default: the migration\'s batch_size)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l sub-batch-size -d 'Rows per UPDATE statement inside a batch (default: the migration\'s sub_batch_size)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l pause-ms -d 'Pause between sub-batches in milliseconds (default: the migration\'s pause_ms)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l target-batch-time -d 'Adapt the batch size so a batch transaction takes about this long, like GitLab\'s batch optimizer; 0 keeps the batch size fixed' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l statement-timeout -d 'Longest any statement of a batch may run; a batch that hits it is halved and retried' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l lock-timeout -d 'Longest a batch waits for a lock held by the engine; then it is halved and retried' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l max-replication-lag -d 'Pause before a batch while a standby replays more than this far behind (checked on the primary\'s pg_stat_replication); resume by itself. Batches also wait while an anti-wraparound autovacuum works on the migrated table' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l all -d 'Every unfinished migration, in id order; stops at the first that fails'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand finalize-migration" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "list" -d 'Every migration with its status, progress and failed batch jobs'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "show" -d 'One migration and its recent batch jobs, with durations and errors'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "pause" -d 'Stop an active (or finalizing) migration after its current batch'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "resume" -d 'Make a paused migration active again'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "retry" -d 'Put failed batch jobs back to pending with fresh attempts and make the migration active; then run `finalize-migration --id ID`'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "mark-finished" -d 'DANGEROUS: mark every batch job succeeded and the migration finished without running the remaining batches, as GitLab\'s runbook does to skip a migration'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and not __fish_seen_subcommand_from list show pause resume retry mark-finished help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from pause" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from resume" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from retry" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from mark-finished" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every migration with its status, progress and failed batch jobs'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "show" -d 'One migration and its recent batch jobs, with durations and errors'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "pause" -d 'Stop an active (or finalizing) migration after its current batch'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Make a paused migration active again'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "retry" -d 'Put failed batch jobs back to pending with fresh attempts and make the migration active; then run `finalize-migration --id ID`'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "mark-finished" -d 'DANGEROUS: mark every batch job succeeded and the migration finished without running the remaining batches, as GitLab\'s runbook does to skip a migration'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand background-migrations; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l to -d 'Stop at this version (default: the newest this jobdbctl knows)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l max-wait -d 'How long to wait for old workers before a breaking version (default 4h, config max_migration_wait)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l lock-wait -d 'How long to wait for another migrator to finish before exiting 7' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l dry-run -d 'Print the plan and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l force-after-wait -d 'When the wait runs out, release the old workers\' jobs and proceed instead of failing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l finalize -d 'Finish a required background migration first instead of refusing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand migrate" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l mode -d 'online: consistent snapshot through SQL while the engine runs (any server); cold: stop the embedded server, archive its data directory, start it again if it was running; physical: a base backup of the running embedded cluster for point-in-time restore (needs wal_archive; see restore --to-time)' -r -f -a "online\t'Consistent snapshot of the job schema through SQL while the server runs'
cold\t'Tarball of the embedded cluster\'s data directory with the server stopped'
physical\t'Base backup of the embedded cluster\'s data directory while it runs, for point-in-time recovery with the archived WAL (wal_archive)'"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s o -l output -d 'Archive to write, or - for standard output. A directory gets a timestamped name inside it. Default: a timestamped name in backup_dir (config). An existing file of the same name is replaced only if it is a regular file of this user. An s3://bucket/prefix/ URL is a directory in object storage (a last segment that is an archive\'s name, e.g. s3://b/p/pre-upgrade.tar.zst, is a name; an existing object is never overwritten)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l keep -d 'After a successful backup, keep only the newest N complete archives of this database that jobdbctl named itself in the destination directory, and delete older ones. Archives written to a name you chose and destroy --backup-first archives are never deleted; damaged ones are reported and kept' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l keep-within -d 'Like --keep, but keep every such archive newer than DURATION (e.g. 30d). With both, an archive is kept if either rule keeps it' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l compression -d 'gzip (.tar.gz), zstd (.tar.zst: faster, under half the size) or none (.tar). Default: compression in jobdbctl.toml, else gzip. verify and restore read all three' -r -f -a "gzip\t'Independent gzip members, one per block (`.tar.gz`): any gzip reader reads it'
zstd\t'Independent zstd frames, one per block (`.tar.zst`): faster and smaller'
none\t'Plain tar (`.tar`)'"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l mark -d 'Make no archive: write a restore point named NAME in the embedded cluster\'s WAL (it needs wal_archive) and record it beside the archived WAL, for a later restore --to-name NAME. `jobdbctl backups points` lists them' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l encrypt-to -d 'Encrypt the archive to this age public key (age1…) or ssh-ed25519 / ssh-rsa public key; repeat for several. The result is a standard age file (.age). Default: encrypt_recipients in jobdbctl.toml' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l encrypt-to-file -d 'Encrypt to every public key in FILE, one a line (# comments). Default: encrypt_recipients_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l passphrase-file -d 'Encrypt with the passphrase on FILE\'s first line (mode 0600; never on the command line). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l pin -d 'Mark the archive pinned: --keep, --keep-within and backups prune never delete it, even under a name jobdbctl chose. (An archive written to a file name you chose is always pinned.)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l no-space-check -d 'Write the archive even when the destination\'s free space looks too small'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l dir -d 'With latest, or a --to-* target and no ARCHIVE: the backup directory (or s3://bucket/prefix/) to look in (default: backup_dir from the configuration)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l to-time -d 'Point-in-time restore of the embedded cluster to the moment T (RFC 3339 with its offset, e.g. 2026-12-07T14:02:00Z): every transaction committed by then, none after' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l to-name -d 'Point-in-time restore to the restore point NAME (the newest of that name: `migrate` makes before-migrate-VERSION, `backup --mark NAME` others; `backups points` lists them)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l to-lsn -d 'Point-in-time restore to just after the WAL position LSN (e.g. 0/3000148)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l to-end -d 'Point-in-time restore to the end of the archived WAL: everything the server archived (a running server first archives what it has written)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l remove-old -d 'After a point-in-time restore, remove the replaced data directory once the restored cluster has started, instead of keeping it as psql.replaced-TIME beside psql/'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l force -d 'Replace a job schema that has jobs (they are lost; jobs created after the backup are gone), or a schema of that name that holds no jobs. Only the job schema is ever replaced: jobdb or graphile_worker by the archive\'s profile, or the one --schema names; an archive of any other schema is refused unless --schema names it'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l avoid-id-reuse -d 'Raise the restored job counter to the job-ID high-water mark, so no job ID handed out since the backup is handed out again (also after `destroy`: the mark survives it)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l dry-run -d 'Make every check a restore makes before it changes anything (the whole archive, live workers, jobs without --force, the schema, the lock) and say what would be replaced; change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l dir -d 'The engine\'s log directory (else job_logs_dir in jobdbctl.toml)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l above -d 'Entries of jobs whose ID is above N: the last used job ID that restore or show-params printed (0 for a new, empty job database)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l pattern -d 'Where a job\'s logs are below DIR: `{user}` stands for any name, `{jid}` for the job ID; the entry with `{jid}` (last) is the one listed and removed. Default `{user}/J{jid}` (Tractor), else job_logs_pattern in jobdbctl.toml' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l delete -d 'Remove them (asks on a terminal; -y to not ask)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l dry-run -d 'With --delete: show what would be removed and remove nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand job-logs" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l older-than -d 'Purge jobs that finished longer ago than this (e.g. 30d, 12h)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l before -d 'Purge jobs that finished before this time (RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in UTC)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l state -d 'Finished states to purge, comma-separated (default: all three)' -r -f -a "succeeded\t''
failed\t''
cancelled\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l archive -d 'Move purged jobs into month archive tables instead of only deleting them'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l dry-run -d 'Count what would be purged, by month and state, and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-jobs" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l to -d 'The last month to drop, YYYY-MM' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l dry-run -d 'List the months that would be dropped and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand purge-archive" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l table -d 'Only this table of the job schema (default: the jobs, queue and worker tables)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l analyze -d 'Also ANALYZE, refreshing the planner\'s statistics'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l full -d 'VACUUM FULL: rewrite the tables under an exclusive lock'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l force -d 'With --full: go ahead although live workers exist'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand vacuum" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l tail -d 'Show the last N lines (default 100; 0 for all)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l since -d 'Only lines logged within this long (e.g. 1h)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l older-than -d 'With --purge: remove files last written longer ago than this (e.g. 30d)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l follow -d 'Keep printing lines as the server writes them (Ctrl-C stops)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l purge -d 'Remove rotated log files older than --older-than (never the current one)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l dry-run -d 'With --purge: list the files that would be removed and remove nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand logs" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l dir -d 'The backup directory, or s3://bucket/prefix/ (default: backup_dir from the configuration)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l verify -d 'Read every archive completely, as verify does (slower: the whole directory is read), instead of only its header and end; exit 5 if any is damaged'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -s w -l wide -d 'Also show where each archive came from: mode, database and server, profile, schema and its version, last used job ID (the default columns fit 80 columns)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -f -a "list" -d 'List the archives, newest first: when and where each was taken, its size and state, and whether retention may prune it (the default action)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -f -a "verify" -d 'Like list --verify: read every archive completely; exit 5 if any is damaged'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -f -a "prune" -d 'Delete this database\'s old archives that jobdbctl named itself, by the same rules as backup --keep/--keep-within. Asks first; without a terminal needs --yes'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -f -a "check" -d 'For cron and monitoring: exit 4 with one line when this database\'s newest archive is older than --max-age, missing, or damaged (read in full with --verify)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -f -a "points" -d 'List the restore points recorded in the embedded cluster\'s WAL archive (wal_archive), oldest first: those migrate made before changing the schema and backup --mark NAME'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and not __fish_seen_subcommand_from list verify prune check points help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l dir -d 'The backup directory, or s3://bucket/prefix/ (default: backup_dir from the configuration)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l verify -d 'Read every archive completely, as verify does (slower: the whole directory is read), instead of only its header and end; exit 5 if any is damaged'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -s w -l wide -d 'Also show where each archive came from: mode, database and server, profile, schema and its version, last used job ID (the default columns fit 80 columns)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l dir -d 'The backup directory, or s3://bucket/prefix/ (default: backup_dir from the configuration)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -s w -l wide -d 'Also show where each archive came from (see list --wide)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l dir -d 'The backup directory, or s3://bucket/prefix/ (default: backup_dir from the configuration)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l keep -d 'Keep the newest N complete archives of this database' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l keep-within -d 'Keep every complete archive of this database newer than DURATION (e.g. 30d). With --keep, an archive is kept if either rule keeps it' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l dry-run -d 'Show what would be deleted and delete nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from prune" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l dir -d 'The backup directory, or s3://bucket/prefix/ (default: backup_dir from the configuration)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l identity -d 'Decrypt encrypted archives with this age identity file (age-keygen\'s output) or unprotected ssh private key (mode 0600); repeatable. Default: identity_file in jobdbctl.toml or JOBDBCTL_IDENTITY_FILE' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l passphrase-file -d 'Decrypt passphrase-encrypted archives with the passphrase on FILE\'s first line (mode 0600). Default: passphrase_file in jobdbctl.toml' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l max-age -d 'How old the newest archive may be (e.g. 26h for a nightly backup)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l verify -d 'Read the newest archive in full (as verify does) instead of its header and end'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from points" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the archives, newest first: when and where each was taken, its size and state, and whether retention may prune it (the default action)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Like list --verify: read every archive completely; exit 5 if any is damaged'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Delete this database\'s old archives that jobdbctl named itself, by the same rules as backup --keep/--keep-within. Asks first; without a terminal needs --yes'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from help" -f -a "check" -d 'For cron and monitoring: exit 4 with one line when this database\'s newest archive is older than --max-age, missing, or damaged (read in full with --verify)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from help" -f -a "points" -d 'List the restore points recorded in the embedded cluster\'s WAL archive (wal_archive), oldest first: those migrate made before changing the schema and backup --mark NAME'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backups; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l to -d 'The WAL archive: a directory or an s3://bucket/prefix/ URL' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l timeout -d 'Give up (exit 1) after this long, so a hung disk cannot hang the archiver' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-push" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l from -d 'The WAL archive: a directory or an s3://bucket/prefix/ URL' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l timeout -d 'Give up (exit 1) after this long' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand wal-fetch" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l prefix -d 'Install under this prefix (default: the running binary\'s, e.g. /usr/local)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l install -d 'Install into PREFIX/share instead of printing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l out-dir -d 'Write jobdbctl.1 and one jobdbctl-COMMAND.1 per command here' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l prefix -d 'Install under this prefix (default: the running binary\'s, e.g. /usr/local)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l log-file -d 'Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit code and the error line. Created with mode 0600; a link or another user\'s file is refused (exit 3) before the command runs' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l install -d 'Install every page into PREFIX/share/man/man1'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "init" -d 'Create the embedded cluster (if absent) and the job schema. Idempotent'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "start" -d 'Start the embedded server and wait until it accepts connections'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "stop" -d 'Stop the embedded server and wait for it to exit'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "restart" -d 'Stop the embedded server (if running) and start it again, e.g. after changing postgresql.conf or the port. Never creates a cluster'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "status" -d 'Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers, unfinished background migrations'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "show-params" -d 'Show the last used job ID, the job-ID high-water mark, schema version, server and data paths, and the effective configuration with where each value came from. Works without a job schema. Passwords are shown as ********'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "conninfo" -d 'Print how an engine or psql connects to the job database: for the embedded cluster its Unix socket (a libpq URL and a psql command that works as printed) and, when listen_addresses is set, its TCP address; for any other server its URL without the password'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "destroy" -d 'Drop the job database: every object of the profile\'s schema. With --cluster, also remove the embedded cluster. The last used job ID is printed and recorded first as the job-ID high-water mark, which survives (`restore --avoid-id-reuse` continues above it). Afterwards `init` gives an empty database whose job IDs start at 1'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "set-job-counter" -d 'Make N the last used job ID, so the next job gets N+1 (avoids reusing job IDs after a downgrade restore). Refuses N below the highest existing job ID, the current counter or the job-ID high-water mark (IDs would be reused) unless --force'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "unlock-stale-jobs" -d 'Release job and queue locks held by workers that are not live, so their jobs run again'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "finalize-migration" -d 'Run the remaining batches of a batched background migration until it is finished'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "background-migrations" -d 'List, inspect, pause, resume, retry or skip batched background migrations'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "migrate" -d 'Apply pending schema versions, each in its own transaction. Refuses a version whose background migration is unfinished (unless --finalize) and, before a breaking version, tells workers (pg_notify \'jobdb_migrate\') and waits until no live worker runs an older version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "backup" -d 'Back up the job database to an archive (.tar.gz by default, .tar.zst or .tar with --compression): an online, consistent snapshot of the job schema (default), or a cold copy of the embedded cluster\'s data directory'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "restore" -d 'Restore a backup archive. An online archive is loaded into a staging schema, checked while loading, and swapped for the job schema in one transaction; a cold archive replaces the embedded cluster\'s data directory; a physical archive is recovered with the archived WAL (to a point with --to-time, --to-name, --to-lsn or --to-end) beside the data directory and swapped in. A failed or interrupted restore leaves the database as it was'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "verify" -d 'Check an archive completely without a database. Exit 5 when anything is wrong'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "job-logs" -d 'List, and with --delete remove, the engine\'s per-job log directories of jobs whose ID is above N: the IDs a restored (or new) job database hands out again, whose old log files the engine would otherwise append to. Symbolic links are never followed: a linked user or job directory is reported and skipped. Needs no database'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "purge-jobs" -d 'Delete finished jobs older than a cut-off, in short batches, optionally moving them into month archive tables first'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "purge-archive" -d 'Drop archived job months up to and including a month'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "vacuum" -d 'VACUUM the job tables and report dead tuples and size before and after'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "logs" -d 'Show, follow or purge the embedded server\'s log files'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "backups" -d 'The backup catalog: list the archives in the backup directory (default), check them completely, or prune old ones'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "wal-push" -d 'Archive one WAL file: what the embedded server\'s archive_command runs (jobdbctl start sets it when wal_archive is configured). Exits 0 only once the file is durably stored, compressed and checksummed, in the archive directory or bucket, and read back; a file archived before with the same contents is success, with other contents a failure (never replaced). Reads no configuration file: a bucket\'s settings and keys come from the environment (AWS_*, JOBDBCTL_S3_ADDRESSING), which jobdbctl start gives the server'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "wal-fetch" -d 'Restore one archived WAL file: what the embedded server\'s restore_command runs during recovery. The file is checked against its checksum before it appears under DEST. A file that is not archived exits 1 without a word: that is how recovery finds the archive\'s end. Reads no configuration file: a bucket\'s settings and keys come from the environment (AWS_*, JOBDBCTL_S3_ADDRESSING), which jobdbctl start gives the server'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, …) to stdout, or install them'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "man" -d 'Generate the man pages: the main page to stdout, every page into --out-dir, or install them where `man` finds them'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop restart status show-params conninfo destroy set-job-counter unlock-stale-jobs finalize-migration background-migrations migrate backup restore verify job-logs purge-jobs purge-archive vacuum logs backups wal-push wal-fetch completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from background-migrations" -f -a "list" -d 'Every migration with its status, progress and failed batch jobs'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from background-migrations" -f -a "show" -d 'One migration and its recent batch jobs, with durations and errors'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from background-migrations" -f -a "pause" -d 'Stop an active (or finalizing) migration after its current batch'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from background-migrations" -f -a "resume" -d 'Make a paused migration active again'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from background-migrations" -f -a "retry" -d 'Put failed batch jobs back to pending with fresh attempts and make the migration active; then run `finalize-migration --id ID`'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from background-migrations" -f -a "mark-finished" -d 'DANGEROUS: mark every batch job succeeded and the migration finished without running the remaining batches, as GitLab\'s runbook does to skip a migration'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from backups" -f -a "list" -d 'List the archives, newest first: when and where each was taken, its size and state, and whether retention may prune it (the default action)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from backups" -f -a "verify" -d 'Like list --verify: read every archive completely; exit 5 if any is damaged'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from backups" -f -a "prune" -d 'Delete this database\'s old archives that jobdbctl named itself, by the same rules as backup --keep/--keep-within. Asks first; without a terminal needs --yes'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from backups" -f -a "check" -d 'For cron and monitoring: exit 4 with one line when this database\'s newest archive is older than --max-age, missing, or damaged (read in full with --verify)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and __fish_seen_subcommand_from backups" -f -a "points" -d 'List the restore points recorded in the embedded cluster\'s WAL archive (wal_archive), oldest first: those migrate made before changing the schema and backup --mark NAME'
