#!/bin/sh
# The commands of the service image. SERVICE is set at build time.
set -eu
command="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$command" in
  web)
    # The gateway and the DRF services alike: gthread measured fastest (README, "Performance").
    # Heartbeat files in /dev/shm: the root file system is read-only in Kubernetes.
    exec gunicorn "${SERVICE}.wsgi:application" --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_WORKERS:-2}" --worker-class "${GUNICORN_WORKER_CLASS:-gthread}" --threads "${WEB_THREADS:-8}" \
      --graceful-timeout 10 --timeout 30 --worker-tmp-dir /dev/shm --access-logfile - --access-logformat '' "$@" ;;
  worker)
    # Node name <service>@<host>: workers of every service share the broker, so a ping names its node.
    exec celery -A "${SERVICE}.celery" worker -Q "${WORKER_QUEUES:-events,notifications}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" --hostname "${SERVICE}@%h" \
      --without-gossip --without-mingle --loglevel "${LOG_LEVEL:-INFO}" "$@" ;;
  beat)
    exec celery -A "${SERVICE}.celery" beat --loglevel "${LOG_LEVEL:-INFO}" -s "${LMS_VAR_DIR}/beat-schedule" "$@" ;;
  relay)
    exec python manage.py relay_outbox "$@" ;;
  migrate)
    exec python manage.py migrate --noinput "$@" ;;
  manage)
    exec python manage.py "$@" ;;
  *)
    exec "$command" "$@" ;;
esac
