# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jobdbctl_global_optspecs
    string join \n database-url= configdir= data-dir= profile= schema= stale-after= json q/quiet v/verbose h/help V/version
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
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "init" -d 'Create the embedded cluster (if absent) and the job schema. Idempotent'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "start" -d 'Start the embedded server (creating the cluster and job schema on first use)'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "stop" -d 'Stop the embedded server and wait for it to exit'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "status" -d 'Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers, unfinished background migrations'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "show-params" -d 'Show the last used job ID, schema version, server and data paths, and the effective configuration with where each value came from. Passwords are shown as ********'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "destroy" -d 'Drop the job database: every object of the profile\'s schema. With --cluster, also remove the embedded cluster\'s data directory. Afterwards `init` gives an empty database whose job IDs start at 1'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "set-job-counter" -d 'Make N the last used job ID, so the next job gets N+1 (avoids reusing job IDs after a downgrade restore)'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "backup" -d 'Back up the job database to a .tar.gz archive: an online, consistent snapshot of the job schema (default), or a cold copy of the embedded cluster\'s data directory'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "restore" -d 'Restore a backup archive. An online archive is loaded into a staging schema, checked while loading, and swapped for the job schema in one transaction; a cold archive replaces the embedded cluster\'s data directory. A failed or interrupted restore leaves the database as it was'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "verify" -d 'Check an archive completely without a database: structure, every entry\'s size and SHA-256, row counts, and that nothing in it could write outside a restore\'s target. Exit 5 when anything is wrong'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, …) to stdout'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "man" -d 'Generate man pages: the main page to stdout, or every page into --out-dir'
complete -c jobdbctl -n "__fish_jobdbctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l schema-version -d 'Create this schema version instead of the latest (to rehearse an upgrade)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand init" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand start" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l mode -d 'fast: roll back open transactions (default); immediate: abort, recovery on next start; smart: wait for clients to disconnect' -r -f -a "smart\t'Wait for clients to disconnect'
fast\t'Roll back open transactions and shut down cleanly (default)'
immediate\t'Abort without a clean shutdown; crash recovery runs on next start'"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand stop" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l check -d 'Exit 4 unless ready to upgrade: server up, no unfinished background migration, no stale lock'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l exact -d 'Count every state exactly (a full scan of the jobs table) instead of estimating finished states from planner statistics'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand status" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand show-params" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l backup-first -d 'Write a backup archive to PATH first (online; cold when the embedded server is stopped) and destroy only if it succeeded' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l cluster -d 'Also stop the embedded server and remove its data directory'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l force -d 'Destroy even while workers are live'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l dry-run -d 'Show what would be destroyed and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand destroy" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l force -d 'Allow IDs to be reused: N below the highest existing job ID or below the current counter'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l dry-run -d 'Show what would change and change nothing'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand set-job-counter" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l mode -d 'online: consistent snapshot through SQL while the engine runs (any server); cold: stop the embedded server, archive its data directory, start it again if it was running' -r -f -a "online\t'Consistent snapshot of the job schema through SQL while the server runs'
cold\t'Tarball of the embedded cluster\'s data directory with the server stopped'"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s o -l output -d 'Archive to write, or - for standard output. A directory gets a timestamped name inside it. Default: a timestamped name in backup_dir (config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l keep -d 'After a successful backup, delete all but the newest N complete archives of this database in the destination directory' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l no-space-check -d 'Write the archive even when the destination\'s free space looks too small'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand backup" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s y -l yes -d 'Do not ask; needed when there is no terminal'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l force -d 'Replace a database that has jobs (they are lost; jobs created after the backup are gone)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l avoid-id-reuse -d 'Keep the current job counter when it is higher than the backup\'s, so job IDs handed out since the backup are never reused'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand restore" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand verify" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l out-dir -d 'Write jobdbctl.1 and one jobdbctl-<command>.1 per subcommand here' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l database-url -d 'PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l configdir -d 'Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l data-dir -d 'Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config)' -r -F
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l profile -d 'Schema profile; detected from the catalog when not given' -r -f -a "jobdb\t''
graphile-worker\t''"
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l schema -d 'Schema holding the job tables (default: jobdb, or graphile_worker)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l stale-after -d 'A worker is live while its last heartbeat is newer than this (default 5m)' -r
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -l json -d 'Machine-readable output on stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s q -l quiet -d 'Print nothing but errors (for cron)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s v -l verbose -d 'Log each SQL statement to stderr'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s h -l help -d 'Print help'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand man" -s V -l version -d 'Print version'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "init" -d 'Create the embedded cluster (if absent) and the job schema. Idempotent'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "start" -d 'Start the embedded server (creating the cluster and job schema on first use)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "stop" -d 'Stop the embedded server and wait for it to exit'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "status" -d 'Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers, unfinished background migrations'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "show-params" -d 'Show the last used job ID, schema version, server and data paths, and the effective configuration with where each value came from. Passwords are shown as ********'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "destroy" -d 'Drop the job database: every object of the profile\'s schema. With --cluster, also remove the embedded cluster\'s data directory. Afterwards `init` gives an empty database whose job IDs start at 1'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "set-job-counter" -d 'Make N the last used job ID, so the next job gets N+1 (avoids reusing job IDs after a downgrade restore)'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "backup" -d 'Back up the job database to a .tar.gz archive: an online, consistent snapshot of the job schema (default), or a cold copy of the embedded cluster\'s data directory'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "restore" -d 'Restore a backup archive. An online archive is loaded into a staging schema, checked while loading, and swapped for the job schema in one transaction; a cold archive replaces the embedded cluster\'s data directory. A failed or interrupted restore leaves the database as it was'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "verify" -d 'Check an archive completely without a database: structure, every entry\'s size and SHA-256, row counts, and that nothing in it could write outside a restore\'s target. Exit 5 when anything is wrong'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, …) to stdout'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "man" -d 'Generate man pages: the main page to stdout, or every page into --out-dir'
complete -c jobdbctl -n "__fish_jobdbctl_using_subcommand help; and not __fish_seen_subcommand_from init start stop status show-params destroy set-job-counter backup restore verify completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
