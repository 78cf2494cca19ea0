-- What AI work costs: one rate per model. Thousandths of a credit per rate unit (1,000 tokens
-- for text, one image, one second of video) so rates can have fractions while every charge
-- is a whole number of credits.
CREATE TABLE rates (
    model TEXT PRIMARY KEY CHECK (length(model) BETWEEN 1 AND 100),
    label TEXT NOT NULL,
    modality TEXT NOT NULL CHECK (modality IN ('text', 'image', 'video')),
    millicredits BIGINT NOT NULL CHECK (millicredits > 0),
    updated_at BIGINT NOT NULL
);
