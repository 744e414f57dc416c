//! The backup and restore drill: a consistent logical backup of every ordinal taken through
//! the workload's MySQL connection while writers run, written to the test's report folder
//! (rows only, never the password); the data destroyed (the StatefulSet and its claims
//! deleted); a fresh StatefulSet restored from the backup files, restarted, and read back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use checks::history::Backup;

use crate::drive::workload::rows_table_ddl;

use super::{ScaleVia, ScenarioError, TestEnv};

/// What a backup file says it is.
const FORMAT: &str = "sts-conformance logical backup v1";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("failed to create the backup folder {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to encode the backup of ordinal {ordinal}")]
    Encode {
        ordinal: u32,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write the backup of ordinal {ordinal} to {path}")]
    Write {
        ordinal: u32,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the backup file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to decode the backup file {path}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("backup file {path} is {found:?}, not {FORMAT:?}")]
    Format { path: PathBuf, found: String },
}

/// One ordinal's backup as written to the report folder: the table's DDL, the snapshot's
/// position in the History and its rows. No credentials.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackupFile {
    pub format: String,
    pub statefulset: String,
    pub namespace: String,
    /// The DDL a restore runs before inserting the rows.
    pub ddl: String,
    pub backup: Backup,
}

impl BackupFile {
    /// Reads and checks a backup file.
    pub fn load(path: &Path) -> Result<BackupFile, BackupError> {
        let text = std::fs::read_to_string(path).map_err(|source| BackupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: BackupFile =
            serde_json::from_str(&text).map_err(|source| BackupError::Decode {
                path: path.to_path_buf(),
                source,
            })?;
        if file.format != FORMAT {
            return Err(BackupError::Format {
                path: path.to_path_buf(),
                found: file.format,
            });
        }
        Ok(file)
    }
}

/// The seqs a drill's checks need.
#[derive(Clone, Copy, Debug)]
pub struct Drill {
    /// The mark after the restored StatefulSet restarted: the reads that follow it are the
    /// ones the restore is judged on.
    pub read_from: u64,
}

impl TestEnv {
    /// Where this test's backup files go: `<report folder>/backup`.
    pub fn backup_dir(&self) -> PathBuf {
        self.report_dir.join("backup")
    }

    /// Backs up each ordinal in turn (see `Workload::backup_rows`) and writes it to
    /// `<backup dir>/<pod>.json`; returns the files.
    pub async fn backup_everywhere(&self, replicas: u32) -> Result<Vec<PathBuf>, ScenarioError> {
        let dir = self.backup_dir();
        std::fs::create_dir_all(&dir).map_err(|source| BackupError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let mut files = Vec::new();
        for ordinal in 0..replicas {
            let backup = self.workload.backup_rows(ordinal).await?;
            let path = dir.join(format!("{}.json", backup.pod));
            let file = BackupFile {
                format: FORMAT.into(),
                statefulset: self.statefulset_name(),
                namespace: self.namespace.name().to_string(),
                ddl: rows_table_ddl(),
                backup,
            };
            let text = serde_json::to_string_pretty(&file)
                .map_err(|source| BackupError::Encode { ordinal, source })?;
            std::fs::write(&path, text).map_err(|source| BackupError::Write {
                ordinal,
                path: path.clone(),
                source,
            })?;
            tracing::info!(ordinal, rows = file.backup.rows.len(), path = %path.display(), "backup written");
            files.push(path);
        }
        Ok(files)
    }

    /// Restores each backup file into the ordinal it was taken from (the rows table
    /// created, its rows inserted in one transaction).
    pub async fn restore_backups(&self, files: &[PathBuf]) -> Result<(), ScenarioError> {
        for path in files {
            let file = BackupFile::load(path)?;
            let ordinal = file.backup.ordinal;
            self.history.mark(format!(
                "restore {} rows into ordinal {ordinal} from {}",
                file.backup.rows.len(),
                path.display()
            ));
            self.workload
                .restore_rows(ordinal, &file.backup.rows)
                .await?;
        }
        Ok(())
    }

    /// The drill: deploys `replicas`, starts a writer per ordinal, backs every ordinal up
    /// once each writer had `acks` writes acknowledged, lets each have `acks` more (rows
    /// the backup need not hold), stops them, deletes the StatefulSet and its claims,
    /// deploys a fresh StatefulSet, reads it (empty: the data is gone), restores it from
    /// the backup files, restarts it (scale to 0 and back: the restore must be on its
    /// volumes) and reads every ordinal back.
    pub async fn backup_drill(&self, replicas: u32, acks: u64) -> Result<Drill, ScenarioError> {
        // Boxed: nested deploy and scale frames overflow a debug test thread's stack.
        Box::pin(self.deploy(replicas as i32)).await?;
        for ordinal in 0..replicas {
            self.workload.prepare(ordinal).await?;
        }
        let mut writers: Vec<_> = (0..replicas)
            .map(|o| self.workload.spawn_writer(o))
            .collect();
        let backed_up = self
            .backup_under_writers(replicas, acks, &mut writers)
            .await;
        for writer in writers {
            let written = writer.stop().await;
            tracing::info!(%written, "writer stopped");
        }
        let files = backed_up?;
        self.settle().await?;
        self.history
            .mark("backup taken; destroy the data: delete the StatefulSet and its claims");
        Box::pin(self.delete_statefulset_and_claims(replicas)).await?;
        Box::pin(self.deploy(replicas as i32)).await?;
        for ordinal in 0..replicas {
            let read = self.workload.read_rows(ordinal).await?;
            self.note(format!(
                "backup drill: the fresh {} held {} rows before the restore",
                read.pod,
                read.rows.len()
            ));
        }
        self.restore_backups(&files).await?;
        self.history
            .mark("restored; restart the restored StatefulSet");
        Box::pin(self.scale(replicas as i32, 0, ScaleVia::ScaleSubresource)).await?;
        Box::pin(self.scale(0, replicas as i32, ScaleVia::ScaleSubresource)).await?;
        self.settle().await?;
        let read_from = self
            .history
            .mark("restored StatefulSet restarted; read every ordinal back");
        self.read_everywhere(replicas).await?;
        self.settle().await?;
        Ok(Drill { read_from })
    }

    async fn backup_under_writers(
        &self,
        replicas: u32,
        acks: u64,
        writers: &mut [crate::drive::workload::Writer],
    ) -> Result<Vec<PathBuf>, ScenarioError> {
        for writer in writers.iter_mut() {
            writer.wait_for_more_acks(acks).await?;
        }
        self.history.mark(format!(
            "back up {replicas} ordinals while their writers run"
        ));
        let files = self.backup_everywhere(replicas).await?;
        for writer in writers.iter_mut() {
            writer.wait_for_more_acks(acks).await?;
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checks::history::Row;

    #[test]
    fn a_backup_file_round_trips_and_carries_no_credentials() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mysql-0.json");
        let file = BackupFile {
            format: FORMAT.into(),
            statefulset: "mysql".into(),
            namespace: "ns".into(),
            ddl: rows_table_ddl(),
            backup: Backup {
                ordinal: 0,
                pod: "mysql-0".into(),
                pod_uid: "u0".into(),
                position: 7,
                rows: vec![Row {
                    id: 1,
                    ordinal: 0,
                    pod_uid: "u0".into(),
                    payload: "p".into(),
                    checksum: checks::history::row_checksum(1, 0, "p"),
                }],
            },
        };
        let text = serde_json::to_string_pretty(&file).expect("encode");
        assert!(!text.to_lowercase().contains("password"), "{text}");
        std::fs::write(&path, text).expect("write");
        let back = BackupFile::load(&path).expect("load");
        assert_eq!(back.backup, file.backup);
    }

    #[test]
    fn a_file_of_another_format_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.json");
        std::fs::write(
            &path,
            r#"{"format":"other","statefulset":"mysql","namespace":"ns","ddl":"",
               "backup":{"ordinal":0,"pod":"mysql-0","pod_uid":"u","position":1,"rows":[]}}"#,
        )
        .expect("write");
        let err = BackupFile::load(&path).expect_err("other format");
        assert!(err.to_string().contains("\"other\""), "{err}");
    }
}
