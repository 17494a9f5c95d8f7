"""Documents and attachments (issue 19): what a signed body says of an attachment
(``refs``), and how a sealed attachment's content is encrypted in chunks (``stream``). Pure."""
