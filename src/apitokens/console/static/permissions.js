// The upstream permission catalog (39 names, spelled exactly as the API expects),
// grouped for the picker. Every name appears in exactly one group.

/** @type {{title: string, names: string[]}[]} */
export const PERMISSION_GROUPS = [
  { title: "API tokens", names: ["OrganizationAPITokenRead", "OrganizationAPITokenModify"] },
  { title: "Alerts", names: ["AlertRead", "AlertModify"] },
  { title: "Detections", names: ["RuleRead", "RuleModify", "PolicyRead", "PolicyModify"] },
  {
    title: "Cloud security",
    names: ["CloudsecSourceRead", "CloudsecSourceModify", "ResourceRead", "ResourceModify"],
  },
  {
    title: "Log sources and uploads",
    names: [
      "LogSourceRead",
      "LogSourceModify",
      "LogSourceRawDataRead",
      "BulkUpload",
      "BulkUploadValidate",
    ],
  },
  {
    title: "Data and lookups",
    names: ["DataAnalyticsRead", "DataAnalyticsModify", "LookupRead", "LookupModify", "SummaryRead"],
  },
  {
    title: "Destinations and notifications",
    names: ["DestinationRead", "DestinationModify", "NotificationsSend"],
  },
  {
    title: "AI",
    names: [
      "RunPantherAI",
      "AIRunAsModify",
      "ManageAIResponses",
      "ViewAIPrivateResponses",
      "ManageAISkills",
      "ViewAISkills",
      "ManageScheduledPrompts",
      "ViewScheduledPrompts",
    ],
  },
  { title: "MCP servers", names: ["McpServerRead", "McpServerModify"] },
  {
    title: "Settings and users",
    names: ["GeneralSettingsRead", "GeneralSettingsModify", "UserRead", "UserModify"],
  },
];

/** Names people know from the upstream product, shown beside the exact permission name. */
export const PERMISSION_LABELS = {
  OrganizationAPITokenRead: "Read API Token Info",
  OrganizationAPITokenModify: "Manage API Tokens",
};

/** All permission names, sorted as the API documents them. */
export const PERMISSIONS = PERMISSION_GROUPS.flatMap((g) => g.names).sort();
