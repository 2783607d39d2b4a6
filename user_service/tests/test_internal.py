import pytest

INTERNAL = "/internal/users/{}"


@pytest.mark.django_db
def test_internal_user_lookup_with_the_service_key(api, customer, settings):
    response = api.get(INTERNAL.format(customer.id), HTTP_X_SERVICE_KEY=settings.SERVICE_KEY)

    assert response.status_code == 200
    assert response.json()["data"] == {
        "id": customer.id,
        "role": "customer",
        "is_active": True,
        "email": customer.email,
    }


@pytest.mark.django_db
def test_a_deactivated_admin_is_answered_inactive_with_its_role(api, admin, settings):
    # The other services' admin sites re-check their signed-in admins here: deactivated must read as such.
    admin.is_active = False
    admin.save(update_fields=["is_active"])

    response = api.get(INTERNAL.format(admin.id), HTTP_X_SERVICE_KEY=settings.SERVICE_KEY)

    assert response.status_code == 200
    assert response.json()["data"] == {"id": admin.id, "role": "admin", "is_active": False, "email": admin.email}


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, "", "wrong-key"], ids=["missing", "blank", "wrong"])
def test_internal_user_lookup_needs_the_key(api, customer, key):
    headers = {} if key is None else {"HTTP_X_SERVICE_KEY": key}

    response = api.get(INTERNAL.format(customer.id), **headers)

    assert response.status_code == 403


@pytest.mark.django_db
def test_internal_user_lookup_is_not_fooled_by_a_user_token(api, admin):
    assert api.as_user(admin).get(INTERNAL.format(admin.id)).status_code == 403


@pytest.mark.django_db
def test_internal_lookup_of_unknown_user_is_404(api, settings):
    response = api.get(INTERNAL.format(424242), HTTP_X_SERVICE_KEY=settings.SERVICE_KEY)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "user_not_found"
