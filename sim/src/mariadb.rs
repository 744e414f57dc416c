//! TODO(mariadb)
