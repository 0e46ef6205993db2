// Regular expressions for the JSON Schema string formats the grammar compiler can generate. Each
// one matches a subset of what ajv-formats 3 ("full" mode) accepts, so generated values validate.

export interface FormatPattern {
  pattern: string;
  caseInsensitive?: boolean;
}

const DATE = "[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";
const TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
const URI_CHAR = "[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2}";
const PATH_CHAR = "[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2}";
const QUERY_CHAR = "[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2}";
const URI = `[A-Za-z][A-Za-z0-9+.-]{0,15}://(${URI_CHAR})*(:[0-9]{1,5})?(/(${PATH_CHAR})*)*(\\?(${QUERY_CHAR})*)?(#(${QUERY_CHAR})*)?`;
const EMAIL_LOCAL = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const URL_LABEL = "[A-Za-z0-9]{1,63}(-[A-Za-z0-9]{1,63}){0,8}";
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const HEX = "[0-9a-fA-F]";

/**
 * Notable gaps: `date` never produces February 29 (the grammar cannot check leap years), times
 * always carry a time zone, and `uri` always has an authority (`scheme://…`).
 */
export const FORMAT_PATTERNS: Readonly<Record<string, FormatPattern>> = {
  date: { pattern: `^${DATE}$` },
  time: { pattern: `^${TIME}$` },
  "date-time": { pattern: `^${DATE}T${TIME}$` },
  uri: { pattern: `^${URI}$` },
  "uri-reference": { pattern: `^${URI}$` },
  url: { pattern: `^(https?|ftp)://${URL_LABEL}(\\.${URL_LABEL}){0,3}\\.[A-Za-z]{2,6}(:[0-9]{2,5})?(/(${PATH_CHAR})*)*$` },
  email: { pattern: `^${EMAIL_LOCAL}(\\.${EMAIL_LOCAL})*@(${LABEL}\\.){1,4}${LABEL}$` },
  hostname: { pattern: `^${LABEL}(\\.${LABEL}){0,2}$` },
  ipv4: { pattern: `^(${OCTET}\\.){3}${OCTET}$` },
  uuid: { pattern: `^${HEX}{8}-(${HEX}{4}-){3}${HEX}{12}$` },
};
