"""Django's output formats for English pages (admin), overriding the locale's
"Nov. 30, 2026, 7:44 p.m.": the same "2026-11-30 19:45:11 UTC" as the console
(apps/web/templatetags/console_tags.py WHEN_FORMAT). Input formats are the
locale's."""
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
