-- What a member who works in one pooled project sees (workspaces.member_view): the whole
-- balance ('balance', the default) or only that project's earmarked pool ('pool'). The project
-- a person works in (memberships.project) is the host product's to say, by the name its usage
-- calls send in resource.project. The PostgreSQL twin lives in ../postgres.
ALTER TABLE workspaces ADD COLUMN member_view TEXT NOT NULL DEFAULT 'balance' CHECK (member_view IN ('balance', 'pool'));
ALTER TABLE memberships ADD COLUMN project TEXT CHECK (project IS NULL OR length(project) BETWEEN 1 AND 200);
