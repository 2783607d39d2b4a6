#!/bin/sh
# One database and one owner per service (run once by the postgres image on an empty volume).
set -eu
for service in user loan notification; do
  password_var="$(echo "${service}" | tr a-z A-Z)_DB_PASSWORD"
  password="$(printenv "$password_var")"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE lms_${service} LOGIN PASSWORD '${password}';
CREATE DATABASE lms_${service} OWNER lms_${service};
REVOKE ALL ON DATABASE lms_${service} FROM PUBLIC;
SQL
done
