"""A throwaway PostgreSQL cluster on 127.0.0.1 for the benchmark scripts (bench-ingest, bench-close).

    import pgcluster
    with pgcluster.Cluster() as cluster:
        cluster.url          # postgres://tollgate:tollgate@127.0.0.1:PORT/tollgate_bench
        cluster.psql("SELECT 1")

The same steps as scripts/test's start_cluster: the newest /usr/lib/postgresql/*/bin (else initdb
and pg_ctl on PATH), a cluster in a temporary directory owned by `postgres` when we are root
(initdb and postgres refuse to run as root; runuser switches), listening on 127.0.0.1 only, on the
first free port from 55600 (PGPORT_FROM), with role `tollgate` (password `tollgate`) owning
database `tollgate_bench`. Unlike scripts/test's cluster it keeps PostgreSQL's durability as
shipped (fsync, synchronous_commit and full_page_writes on): a benchmark measures what Tollgate
promises, a commit that survives a crash. Memory is sized for a server of this machine's 24 GB
rather than the package's minimum (SIZING: 512 MB of shared buffers, which makes the WAL buffers
16 MB, and checkpoints every 4 GB of WAL rather than every 1 GB). Stopped and removed on exit
(PGCLUSTER_KEEP=1 keeps the directory and its log).
"""
import glob, os, shutil, socket, subprocess, tempfile, time

USER, PASSWORD, DATABASE = "tollgate", "tollgate", "tollgate_bench"
SIZING = {"shared_buffers": "'512MB'", "max_wal_size": "'4GB'"}


def server_binaries():
    """The directory with initdb, pg_ctl, postgres and psql."""
    def version(path):
        return [int(part) if part.isdigit() else 0 for part in path.split("/")[-2].split(".")]
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(os.path.join(directory, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        directory = os.path.dirname(os.path.realpath(pg_ctl))
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return directory
    raise SystemExit("PostgreSQL's server binaries (initdb, pg_ctl, postgres) not found; Debian: apt-get install postgresql")


def port_free(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class Cluster:
    def __init__(self, settings=None):
        self.bin = server_binaries()
        self.settings = dict(SIZING, **(settings or {}))
        self.root = os.geteuid() == 0
        self.tmp = None
        self.port = None
        self.started = False

    def _as_owner(self, args, **kwargs):
        if self.root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            args = [runuser, "-u", "postgres", "--"] + args
        return subprocess.run(args, cwd=self.tmp, **kwargs)

    def start(self):
        # Short path on purpose: unix socket paths are limited to ~107 bytes.
        self.tmp = tempfile.mkdtemp(prefix="tollgate-pg.", dir="/tmp")
        os.chmod(self.tmp, 0o700)
        if self.root:
            shutil.chown(self.tmp, "postgres", "postgres")
        initdb = self._as_owner([os.path.join(self.bin, "initdb"), "-D", os.path.join(self.tmp, "data"), "-U", "postgres",
                                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"],
                                capture_output=True, text=True)
        if initdb.returncode != 0:
            raise SystemExit("initdb failed:\n" + initdb.stdout + initdb.stderr)
        lines = ["", "# --- scripts/pgcluster.py ---", "listen_addresses = '127.0.0.1'",
                 "unix_socket_directories = '%s'" % self.tmp]
        lines += ["%s = %s" % item for item in self.settings.items()]
        with open(os.path.join(self.tmp, "data/postgresql.conf"), "a") as conf:
            conf.write("\n".join(lines) + "\n")
        port = int(os.environ.get("PGPORT_FROM", "55600"))
        log = os.path.join(self.tmp, "postgres.log")
        for _ in range(50):
            if port_free(port):
                started = self._as_owner([os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.tmp, "data"), "-l", log,
                                          "-w", "-t", "60", "-o", "-p %d" % port, "start"], capture_output=True, text=True)
                if started.returncode == 0:
                    break
                text = open(log).read() if os.path.exists(log) else ""
                if "already in use" not in text and "could not bind" not in text and "could not create listen" not in text:
                    raise SystemExit("could not start PostgreSQL:\n" + started.stdout + started.stderr + text)
            port += 1
        else:
            raise SystemExit("no free port for PostgreSQL")
        self.port, self.started = port, True
        try:
            self.superuser("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (USER, PASSWORD))
            self.superuser("CREATE DATABASE %s OWNER %s" % (DATABASE, USER))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def version(self):
        return self.psql("SHOW server_version").strip()

    @property
    def url(self):
        return "postgres://%s:%s@127.0.0.1:%d/%s" % (USER, PASSWORD, self.port, DATABASE)

    def superuser(self, sql):
        result = self._as_owner([os.path.join(self.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.tmp, "-p",
                        str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit("psql (superuser) failed: " + result.stderr[:2000])

    def psql(self, sql=None, stdin=None, database=DATABASE):
        """Runs `sql` (or a script on stdin) as `tollgate` over TCP; returns its unaligned output."""
        args = [os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "postgres://%s:%s@127.0.0.1:%d/%s" % (USER, PASSWORD, self.port, database)]
        if sql is not None:
            args += ["-c", sql]
        result = subprocess.run(args, input=stdin, capture_output=True)
        if result.returncode != 0:
            raise SystemExit("psql failed: %s" % result.stderr.decode(errors="replace")[:2000])
        return result.stdout.decode()

    def cpu_seconds(self):
        """User and system CPU seconds of the server's processes (the postmaster and its children)."""
        ticks = os.sysconf("SC_CLK_TCK")
        with open(os.path.join(self.tmp, "data/postmaster.pid")) as f:
            postmaster = int(f.readline())
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == postmaster or int(fields[1]) == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self):
        if self.started:
            self._as_owner([os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.tmp, "data"), "-m", "fast", "-w", "stop"],
                           capture_output=True)
            self.started = False
        if self.tmp:
            if os.environ.get("PGCLUSTER_KEEP") == "1":
                print("pgcluster: kept " + self.tmp, flush=True)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
