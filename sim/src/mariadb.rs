//! A small typed wrapper around Debian's MariaDB server binaries.
//!
//! The sim's stand-in for the `mysql` image entrypoint: once per sim a template data dir is
//! built with `mariadb-install-db` and copied into a pod's empty volume on its first start
//! (much faster than install-db per pod). The first start also runs an `--init-file` that
//! sets the root password from `MYSQL_ROOT_PASSWORD` and creates `root@'%'`, like the image;
//! a marker file in the data dir records that it ran.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::controllers::obj;
use crate::process::{ProcessError, Spawner};

/// Marker written into the data dir once the init file has run.
pub const INIT_MARKER: &str = ".kube-sim-initialized";
/// The line mariadbd logs once it accepts connections (after running the init file).
const READY_LINE: &str = "ready for connections";
/// The redo log size the template is built with; every start must use the same.
const LOG_FILE_SIZE: &str = "4M";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum MariaDbError {
    #[error("failed to find {what} at {path}: install mariadb-server or pass its path")]
    MissingBinary { what: &'static str, path: PathBuf },
    #[error("failed to prepare directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to copy the template data dir into {path}")]
    Copy {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to run mariadb-install-db for {path}")]
    InstallSpawn {
        path: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error(
        "failed to build the template data dir {path}: mariadb-install-db {outcome}; see {log}"
    )]
    InstallFailed {
        path: PathBuf,
        outcome: String,
        log: PathBuf,
    },
    #[error("failed to write the init file {path}")]
    InitFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to open the server log {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to move the data dir {path} aside for a zombie container")]
    Split {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to start mariadbd for data dir {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: ProcessError,
    },
}

/// What the image's entrypoint reads from the container's environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InitEnv {
    pub root_password: Option<String>,
    pub allow_empty_password: bool,
    pub root_host: String,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for InitEnv {
    // Never print passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitEnv")
            .field(
                "root_password",
                &self.root_password.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_empty_password", &self.allow_empty_password)
            .field("root_host", &self.root_host)
            .field("database", &self.database)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why a fresh data dir cannot be initialised (the image would exit 1 with this message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "Database is uninitialized and password option is not specified\n    You need to specify one of the following as an environment variable:\n    - MYSQL_ROOT_PASSWORD\n    - MYSQL_ALLOW_EMPTY_PASSWORD\n    - MYSQL_RANDOM_ROOT_PASSWORD"
)]
pub struct MissingPassword;

impl InitEnv {
    /// Reads `MYSQL_*` (and the mariadb image's `MARIADB_*`) literal env values of a
    /// container spec. `valueFrom` references cannot be resolved by the sim.
    pub fn from_container(container: &Value) -> InitEnv {
        let env: Vec<(&str, &str)> = obj::array(container, "/env")
            .iter()
            .filter_map(|e| Some((obj::str_at(e, "/name")?, obj::str_at(e, "/value")?)))
            .collect();
        let get = |suffix: &str| {
            ["MYSQL_", "MARIADB_"].iter().find_map(|prefix| {
                let key = format!("{prefix}{suffix}");
                env.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            })
        };
        let flag =
            |suffix: &str| get(suffix).is_some_and(|v| !v.is_empty() && v != "no" && v != "0");
        InitEnv {
            root_password: get("ROOT_PASSWORD").filter(|p| !p.is_empty()),
            allow_empty_password: flag("ALLOW_EMPTY_PASSWORD") || flag("ALLOW_EMPTY_ROOT_PASSWORD"),
            root_host: get("ROOT_HOST")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "%".into()),
            database: get("DATABASE").filter(|d| !d.is_empty()),
            user: get("USER").filter(|u| !u.is_empty() && u != "root"),
            password: get("PASSWORD"),
        }
    }

    /// The init file's SQL. Idempotent, so a start interrupted before the marker was
    /// written can simply run it again.
    pub fn init_sql(&self) -> Result<String, MissingPassword> {
        let password = match (&self.root_password, self.allow_empty_password) {
            (Some(p), _) => p.clone(),
            (None, true) => String::new(),
            (None, false) => return Err(MissingPassword),
        };
        let password = sql_string(&password);
        let host = sql_string(&self.root_host);
        let mut sql = vec![
            "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host <> 'localhost');"
                .to_string(),
            "DELETE FROM mysql.proxies_priv WHERE Proxied_host <> 'localhost';".to_string(),
            "FLUSH PRIVILEGES;".to_string(),
            format!("ALTER USER 'root'@'localhost' IDENTIFIED BY {password};"),
        ];
        if self.root_host != "localhost" {
            sql.push(format!(
                "CREATE OR REPLACE USER 'root'@{host} IDENTIFIED BY {password};"
            ));
            sql.push(format!(
                "GRANT ALL PRIVILEGES ON *.* TO 'root'@{host} WITH GRANT OPTION;"
            ));
        }
        if let Some(db) = &self.database {
            sql.push(format!("CREATE DATABASE IF NOT EXISTS {};", sql_ident(db)));
        }
        if let (Some(user), Some(pw)) = (&self.user, &self.password) {
            sql.push(format!(
                "CREATE OR REPLACE USER {}@'%' IDENTIFIED BY {};",
                sql_string(user),
                sql_string(pw)
            ));
            if let Some(db) = &self.database {
                sql.push(format!(
                    "GRANT ALL ON {}.* TO {}@'%';",
                    sql_ident(db),
                    sql_string(user)
                ));
            }
        }
        sql.push("FLUSH PRIVILEGES;".to_string());
        Ok(sql.join("\n") + "\n")
    }
}

/// A single-quoted SQL string literal.
pub fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A backquoted SQL identifier.
pub fn sql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// The command line of one pod's server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    pub data_dir: PathBuf,
    pub run_dir: PathBuf,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub init_file: Option<PathBuf>,
    pub as_root: bool,
}

impl ServerOptions {
    pub fn log_path(&self) -> PathBuf {
        self.run_dir.join("error.log")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.run_dir.join("mysqld.sock")
    }

    /// A private tmpdir: servers sharing /tmp clash on temporary table names.
    pub fn tmp_dir(&self) -> PathBuf {
        self.run_dir.join("tmp")
    }

    /// mariadbd arguments: no config files, bound to the pod IP only, small memory
    /// footprint, and durable commits (innodb_flush_log_at_trx_commit=1).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", self.data_dir.display()),
            format!("--socket={}", self.socket_path().display()),
            format!("--pid-file={}", self.run_dir.join("mysqld.pid").display()),
            format!("--tmpdir={}", self.tmp_dir().display()),
            format!("--bind-address={}", self.ip),
            format!("--port={}", self.port),
            "--skip-name-resolve".to_string(),
            format!("--log-error={}", self.log_path().display()),
            "--innodb-buffer-pool-size=8M".to_string(),
            format!("--innodb-log-file-size={LOG_FILE_SIZE}"),
            "--innodb-log-buffer-size=2M".to_string(),
            "--innodb-flush-log-at-trx-commit=1".to_string(),
            "--innodb-temp-data-file-path=ibtmp1:1M:autoextend".to_string(),
            "--key-buffer-size=1M".to_string(),
            "--aria-pagecache-buffer-size=1M".to_string(),
            "--performance-schema=OFF".to_string(),
            "--max-connections=100".to_string(),
        ];
        if self.as_root {
            args.push("--user=root".to_string());
        }
        if let Some(init) = &self.init_file {
            args.push(format!("--init-file={}", init.display()));
        }
        args
    }
}

/// The MariaDB binaries plus the lazily built template data dir.
pub struct MariaDb {
    mariadbd: PathBuf,
    install_db: PathBuf,
    state_dir: PathBuf,
    as_root: bool,
    template: OnceCell<PathBuf>,
}

impl MariaDb {
    /// Checks that both binaries exist.
    pub fn new(
        mariadbd: PathBuf,
        install_db: PathBuf,
        state_dir: PathBuf,
        as_root: bool,
    ) -> Result<MariaDb, MariaDbError> {
        for (what, path) in [("mariadbd", &mariadbd), ("mariadb-install-db", &install_db)] {
            if !path.is_file() {
                return Err(MariaDbError::MissingBinary {
                    what,
                    path: path.clone(),
                });
            }
        }
        Ok(MariaDb {
            mariadbd,
            install_db,
            state_dir,
            as_root,
            template: OnceCell::new(),
        })
    }

    pub fn as_root(&self) -> bool {
        self.as_root
    }

    /// The template data dir, built on first use (concurrent callers wait for one build;
    /// a failed build is retried by the next caller).
    pub async fn template(&self, spawner: &Spawner) -> Result<PathBuf, MariaDbError> {
        self.template
            .get_or_try_init(|| self.build_template(spawner))
            .await
            .cloned()
    }

    async fn build_template(&self, spawner: &Spawner) -> Result<PathBuf, MariaDbError> {
        let final_dir = self.state_dir.join("template");
        if final_dir.join("mysql").is_dir() {
            return Ok(final_dir);
        }
        let building = self.state_dir.join("template.building");
        let log = self.state_dir.join("template-install.log");
        // Concurrent bootstraps sharing /tmp clash on temporary table names.
        let tmp = self.state_dir.join("template.tmp");
        remove_dir_if_exists(&building)?;
        fs::create_dir_all(&tmp).map_err(|source| MariaDbError::Dir {
            path: tmp.clone(),
            source,
        })?;
        let log_file = fs::File::create(&log).map_err(|source| MariaDbError::Log {
            path: log.clone(),
            source,
        })?;
        let log_err = log_file.try_clone().map_err(|source| MariaDbError::Log {
            path: log.clone(),
            source,
        })?;
        let mut cmd = std::process::Command::new(&self.install_db);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", building.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg(format!("--innodb-log-file-size={LOG_FILE_SIZE}"))
            .arg("--innodb-buffer-pool-size=8M")
            .arg(format!("--tmpdir={}", tmp.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err));
        if self.as_root {
            cmd.arg("--user=root");
        }
        tracing::info!(datadir = %building.display(), "building the MariaDB template data dir");
        let mut child = spawner
            .spawn(cmd)
            .await
            .map_err(|source| MariaDbError::InstallSpawn {
                path: building.clone(),
                source,
            })?;
        let outcome = match tokio::time::timeout(INSTALL_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(format!("exited with {status}")),
            Ok(Err(e)) => Some(format!("could not be waited for: {e}")),
            Err(_) => Some(format!(
                "did not finish within {}s",
                INSTALL_TIMEOUT.as_secs()
            )),
        };
        if let Some(outcome) = outcome {
            return Err(MariaDbError::InstallFailed {
                path: building,
                outcome,
                log,
            });
        }
        fs::rename(&building, &final_dir).map_err(|source| MariaDbError::Dir {
            path: final_dir.clone(),
            source,
        })?;
        Ok(final_dir)
    }

    /// The server command for `opts`; stdout and stderr go to the pod's log.
    pub fn server_command(
        &self,
        opts: &ServerOptions,
    ) -> Result<std::process::Command, MariaDbError> {
        let log_path = opts.log_path();
        let open = || {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|source| MariaDbError::Log {
                    path: log_path.clone(),
                    source,
                })
        };
        let mut cmd = std::process::Command::new(&self.mariadbd);
        cmd.args(opts.args())
            .stdin(Stdio::null())
            .stdout(Stdio::from(open()?))
            .stderr(Stdio::from(open()?));
        Ok(cmd)
    }

    /// Spawns the server for `opts` through the guarded spawner.
    pub async fn start_server(
        &self,
        spawner: &Spawner,
        opts: &ServerOptions,
    ) -> Result<tokio::process::Child, MariaDbError> {
        let tmp = opts.tmp_dir();
        fs::create_dir_all(&tmp).map_err(|source| MariaDbError::Dir { path: tmp, source })?;
        let cmd = self.server_command(opts)?;
        spawner
            .spawn(cmd)
            .await
            .map_err(|source| MariaDbError::Spawn {
                path: opts.data_dir.clone(),
                source,
            })
    }
}

fn remove_dir_if_exists(path: &Path) -> Result<(), MariaDbError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MariaDbError::Dir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether the data dir holds a database (the image's entrypoint checks `mysql/`).
pub fn is_initialized(data_dir: &Path) -> bool {
    data_dir.join("mysql").is_dir()
}

/// Whether the first-start init file has run against this data dir.
pub fn init_done(data_dir: &Path) -> bool {
    data_dir.join(INIT_MARKER).is_file()
}

/// Copies the template into `data_dir` (created if missing) if it holds no database yet.
/// Returns whether it copied.
pub fn prepare_data_dir(template: &Path, data_dir: &Path) -> Result<bool, MariaDbError> {
    fs::create_dir_all(data_dir).map_err(|source| MariaDbError::Dir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    if is_initialized(data_dir) {
        return Ok(false);
    }
    copy_dir(template, data_dir).map_err(|source| MariaDbError::Copy {
        path: data_dir.to_path_buf(),
        source,
    })?;
    Ok(true)
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Splits a volume's data between a zombie container and the pod that replaces it (the
/// `pod:zombie-on-force-delete` fault): `data_dir` is renamed to `aside` (the zombie's
/// server, which holds its files open and its working directory inside, keeps using them
/// there) and a copy of it is put back at `data_dir`, with new inodes and so none of the
/// zombie's file locks, for the replacement to start on. Call it with the zombie stopped
/// (SIGSTOP): the copy is then a crash image, which the replacement's server recovers.
pub fn split_data_dir(data_dir: &Path, aside: &Path) -> Result<(), MariaDbError> {
    let split = || -> io::Result<()> {
        fs::rename(data_dir, aside)?;
        copy_dir(aside, data_dir)
    };
    split().map_err(|source| MariaDbError::Split {
        path: data_dir.to_path_buf(),
        source,
    })
}

/// Empties `data_dir` (the volume:wipe-on-restart fault), keeping the directory itself.
pub fn wipe_data_dir(data_dir: &Path) -> Result<(), MariaDbError> {
    let entries = match fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(MariaDbError::Dir {
                path: data_dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let result = entry.and_then(|e| {
            if e.file_type()?.is_dir() {
                fs::remove_dir_all(e.path())
            } else {
                fs::remove_file(e.path())
            }
        });
        result.map_err(|source| MariaDbError::Dir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Writes the init SQL readable by the owner only; the caller never logs its content.
pub fn write_init_file(run_dir: &Path, sql: &str) -> Result<PathBuf, MariaDbError> {
    let path = run_dir.join("init.sql");
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(sql.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| MariaDbError::InitFile {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Records that the init file ran, then removes it (it holds the password).
pub fn finish_init(data_dir: &Path, init_file: &Path) -> Result<(), MariaDbError> {
    let marker = data_dir.join(INIT_MARKER);
    fs::write(&marker, b"root password set by kube-sim\n").map_err(|source| {
        MariaDbError::InitFile {
            path: marker,
            source,
        }
    })?;
    match fs::remove_file(init_file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MariaDbError::InitFile {
            path: init_file.to_path_buf(),
            source,
        }),
    }
}

/// The log's current length, where a new server's output will begin.
pub fn log_offset(log: &Path) -> u64 {
    fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// Whether the server logged "ready for connections" after `offset`.
pub fn log_shows_ready(log: &Path, offset: u64) -> bool {
    let read = || -> io::Result<String> {
        let mut file = fs::File::open(log)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut text = String::new();
        file.take(1 << 20).read_to_string(&mut text)?;
        Ok(text)
    };
    read().is_ok_and(|text| text.contains(READY_LINE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(env: Value) -> Value {
        json!({"name": "mysql", "image": "mysql:5.7", "env": env})
    }

    #[test]
    fn root_password_from_env_sets_root_everywhere() {
        let env = InitEnv::from_container(&container(
            json!([{"name": "MYSQL_ROOT_PASSWORD", "value": "my-secret-pw"}]),
        ));
        let sql = env.init_sql().expect("password given");
        assert!(sql.contains("ALTER USER 'root'@'localhost' IDENTIFIED BY 'my-secret-pw';"));
        assert!(sql.contains("CREATE OR REPLACE USER 'root'@'%' IDENTIFIED BY 'my-secret-pw';"));
        assert!(sql.contains("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"));
    }

    #[test]
    fn missing_password_is_refused_like_the_image() {
        let env = InitEnv::from_container(&container(json!([])));
        assert_eq!(env.init_sql(), Err(MissingPassword));
        let empty_ok = InitEnv::from_container(&container(
            json!([{"name": "MYSQL_ALLOW_EMPTY_PASSWORD", "value": "yes"}]),
        ));
        assert!(
            empty_ok
                .init_sql()
                .expect("allowed")
                .contains("IDENTIFIED BY ''")
        );
    }

    #[test]
    fn database_and_user_are_created() {
        let env = InitEnv::from_container(&container(json!([
            {"name": "MARIADB_ROOT_PASSWORD", "value": "r"},
            {"name": "MYSQL_DATABASE", "value": "shop"},
            {"name": "MYSQL_USER", "value": "app"},
            {"name": "MYSQL_PASSWORD", "value": "pw"},
        ])));
        let sql = env.init_sql().expect("password");
        assert!(sql.contains("CREATE DATABASE IF NOT EXISTS `shop`;"));
        assert!(sql.contains("CREATE OR REPLACE USER 'app'@'%' IDENTIFIED BY 'pw';"));
        assert!(sql.contains("GRANT ALL ON `shop`.* TO 'app'@'%';"));
    }

    #[test]
    fn quoting_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(sql_string("a'b\\c\nd"), "'a\\'b\\\\c\\nd'");
        assert_eq!(sql_ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let env = InitEnv {
            root_password: Some("hunter2".into()),
            ..InitEnv::default()
        };
        assert!(!format!("{env:?}").contains("hunter2"));
    }

    #[test]
    fn server_args_bind_the_pod_ip_and_keep_commits_durable() {
        let opts = ServerOptions {
            data_dir: "/s/pvs/pv1".into(),
            run_dir: "/s/pods/u".into(),
            ip: Ipv4Addr::new(127, 77, 11, 2),
            port: 3306,
            init_file: Some("/s/pods/u/init.sql".into()),
            as_root: true,
        };
        let args = opts.args();
        for expected in [
            "--no-defaults",
            "--datadir=/s/pvs/pv1",
            "--bind-address=127.77.11.2",
            "--port=3306",
            "--socket=/s/pods/u/mysqld.sock",
            "--log-error=/s/pods/u/error.log",
            "--tmpdir=/s/pods/u/tmp",
            "--innodb-flush-log-at-trx-commit=1",
            "--user=root",
            "--init-file=/s/pods/u/init.sql",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "missing {expected} in {args:?}"
            );
        }
    }

    #[test]
    fn init_file_is_private_and_removed_when_done() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let init = write_init_file(dir.path(), "SELECT 1;\n").expect("write");
        let mode = fs::metadata(&init).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!init_done(dir.path()));
        finish_init(dir.path(), &init).expect("finish");
        assert!(init_done(dir.path()));
        assert!(!init.exists());
    }

    #[test]
    fn prepare_copies_only_into_an_uninitialized_dir_and_wipe_empties_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = dir.path().join("template");
        fs::create_dir_all(template.join("mysql")).expect("mkdir");
        fs::write(template.join("ibdata1"), b"x").expect("write");
        let data = dir.path().join("data");
        assert!(prepare_data_dir(&template, &data).expect("copy"));
        assert!(data.join("ibdata1").is_file());
        fs::write(data.join("ibdata1"), b"changed").expect("write");
        assert!(!prepare_data_dir(&template, &data).expect("no copy"));
        assert_eq!(fs::read(data.join("ibdata1")).expect("read"), b"changed");
        wipe_data_dir(&data).expect("wipe");
        assert!(data.is_dir());
        assert_eq!(fs::read_dir(&data).expect("read_dir").count(), 0);
    }

    #[test]
    fn a_split_leaves_an_open_file_with_the_zombie_and_a_copy_at_the_volume() {
        use std::io::Seek;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("pv");
        fs::create_dir_all(data.join("mysql")).expect("mkdir");
        fs::write(data.join("ibdata1"), b"before").expect("write");
        let mut held = fs::OpenOptions::new()
            .write(true)
            .open(data.join("ibdata1"))
            .expect("open");
        let aside = dir.path().join("pv.zombie-u1");
        split_data_dir(&data, &aside).expect("split");
        held.seek(SeekFrom::Start(0)).expect("seek");
        held.write_all(b"zombie").expect("the zombie writes on");
        assert_eq!(fs::read(aside.join("ibdata1")).expect("read"), b"zombie");
        assert_eq!(fs::read(data.join("ibdata1")).expect("read"), b"before");
        assert!(is_initialized(&data));
    }

    #[test]
    fn ready_line_only_counts_after_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("error.log");
        fs::write(&log, "old: mariadbd: ready for connections.\n").expect("write");
        let offset = log_offset(&log);
        assert!(!log_shows_ready(&log, offset));
        fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(b"new: ready for connections.\n"))
            .expect("append");
        assert!(log_shows_ready(&log, offset));
    }
}
