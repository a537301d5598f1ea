"""One view, guarded by HasAPIKey (the documented way), returning a small JSON body."""

from typing import ClassVar

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey


class KeyCheck(APIView):
    permission_classes: ClassVar[list[type]] = [HasAPIKey]

    def get(self, request):  # type: ignore[no-untyped-def]
        return Response({"status": "ok", "authenticated": True})


urlpatterns = [path("check", KeyCheck.as_view())]
