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

    user_service accepts each time step once and one step of skew either side: each call gives the
    current step's code, or the next step's when that one is used, waiting for the window when needed.
    """
    import time

    import pyotp
    from django.conf import settings

    from users import mfa
    from users.models import TotpDevice

    secret = mfa.new_secret()
    TotpDevice.objects.create(
        user=user, sealed_secret=mfa.Sealer(settings.MFA_ENCRYPTION_KEY).seal(secret), confirmed_at=user.created_at
    )
    last = [0]

    def next_code() -> str:
        now = int(time.time()) // 30
        step = max(now, last[0] + 1)  # the current step, else one ahead (within the skew)
        while step > int(time.time()) // 30 + 1:
            time.sleep(0.5)
        last[0] = step
        return pyotp.TOTP(secret).at(step * 30)

    return next_code
