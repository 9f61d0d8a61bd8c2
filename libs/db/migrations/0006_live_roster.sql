-- 0006_live_roster: placeholder, replaced by the change that needs it.
SELECT 1;
