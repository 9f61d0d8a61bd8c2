-- 0007_operator_actions: placeholder, replaced by the change that needs it.
SELECT 1;
