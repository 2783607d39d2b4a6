import factory

from users.models import Approval, Role, User

PASSWORD = "correct-Horse-7"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = Role.CUSTOMER
    approval = Approval.APPROVED

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


def give_totp(user: User):
    """Give `user` a confirmed TOTP authenticator; returns `next_code()`, a new valid code on each call.

    user_service accepts each time step once and one step of skew either side, so three sign-ins fit
    one 30-second window: the codes of the step before, the current one and the next.
    """
    import itertools
    import time

    import pyotp
    from django.conf import settings

    from users import mfa
    from users.models import TotpDevice

    secret = mfa.new_secret()
    TotpDevice.objects.create(
        user=user, sealed_secret=mfa.Sealer(settings.MFA_ENCRYPTION_KEY).seal(secret), confirmed_at=user.created_at
    )
    start = int(time.time()) // 30 - 1
    steps = itertools.count(start)
    return lambda: pyotp.TOTP(secret).at(next(steps) * 30)
