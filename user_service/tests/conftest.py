import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from common.testing import skip_unless_postgres
from tests.factories import UserFactory
from users.models import Approval, Role
from users.sessions import Device, start_session

PASSWORD = "correct-Horse-7"


def pytest_collection_modifyitems(config, items):
    skip_unless_postgres(items)


@pytest.fixture(autouse=True)
def _fresh_throttles(request):
    # Without REDIS_URL the counters live in a database table, reachable only from tests with the database.
    uses_database = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(
        request.fixturenames
    )
    if not uses_database:
        yield
        return
    request.getfixturevalue("db")
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def login_rates(settings):
    """Sets the login throttles' rates for one test: `login_rates(per_email="3/min")`."""

    def set_rates(*, per_ip: str = "100/min", per_email: str = "100/min") -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"login_ip": per_ip, "login_email": per_email},
        }

    return set_rates


class Api(APIClient):
    def as_user(self, user):
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {start_session(user, Device(ip=None, user_agent=''))['access']}")
        return self

    def as_token(self, token: str):
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return self


@pytest.fixture
def api():
    return Api()


@pytest.fixture
def customer(db):
    return UserFactory(role=Role.CUSTOMER)


@pytest.fixture
def other_customer(db):
    return UserFactory(role=Role.CUSTOMER)


@pytest.fixture
def agent(db):
    return UserFactory(role=Role.AGENT, approval=Approval.APPROVED)


@pytest.fixture
def pending_agent(db):
    return UserFactory(role=Role.AGENT, approval=Approval.PENDING)


@pytest.fixture
def admin(db):
    return UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)
