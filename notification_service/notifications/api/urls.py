from common.api import both_slashes
from notifications.api import views

urlpatterns = [
    *both_slashes("send", views.SendView.as_view(), "send"),
    *both_slashes("send-batch", views.SendBatchView.as_view(), "send-batch"),
    *both_slashes("<int:notification_id>", views.NotificationDetailView.as_view(), "notification"),
    *both_slashes("<int:notification_id>/read", views.MarkReadView.as_view(), "notification-read"),
]
