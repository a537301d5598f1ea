"""Facts of the API contract (../shared/spec/API.md), written out for the tests.

Written from the contract, not imported from ``apitokens``, so that a test comparing the
service with these names can catch a mistake in the service's own catalog.
"""

from __future__ import annotations

UPSTREAM_PERMISSIONS = [
    "AIRunAsModify",
    "AlertModify",
    "AlertRead",
    "BulkUpload",
    "BulkUploadValidate",
    "CloudsecSourceModify",
    "CloudsecSourceRead",
    "DataAnalyticsModify",
    "DataAnalyticsRead",
    "DestinationModify",
    "DestinationRead",
    "GeneralSettingsModify",
    "GeneralSettingsRead",
    "LogSourceModify",
    "LogSourceRawDataRead",
    "LogSourceRead",
    "LookupModify",
    "LookupRead",
    "ManageAIResponses",
    "ManageAISkills",
    "ManageScheduledPrompts",
    "McpServerModify",
    "McpServerRead",
    "NotificationsSend",
    "OrganizationAPITokenModify",
    "OrganizationAPITokenRead",
    "PolicyModify",
    "PolicyRead",
    "ResourceModify",
    "ResourceRead",
    "RuleModify",
    "RuleRead",
    "RunPantherAI",
    "SummaryRead",
    "UserModify",
    "UserRead",
    "ViewAIPrivateResponses",
    "ViewAISkills",
    "ViewScheduledPrompts",
]
"""The 39 upstream permission names, sorted."""
