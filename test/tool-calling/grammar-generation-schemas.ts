// Ten extraction schemas that together use every JSON Schema keyword the grammar compiler supports,
// with the texts the extraction prompts carry, and a walk that lists the keywords a schema uses.

/** One extraction case: a JSON Schema (draft 2020-12) and the text to extract from. */
export interface ExtractCase {
  name: string;
  schema: Record<string, unknown>;
  text: string;
}

export const extractCases: ExtractCase[] = [
  {
    name: "contact",
    text: "Mi chiamo Giulia Rossi, ho 34 anni, scrivetemi a giulia.rossi@example.it. Sono iscritta alla newsletter.",
    schema: {
      type: "object",
      properties: {
        nome: { type: "string", minLength: 1, maxLength: 20 },
        età: { type: "integer", minimum: 0, maximum: 120 },
        email: { type: "string", format: "email" },
        iscritta: { type: "boolean" },
        soprannome: { type: "string", nullable: true, maxLength: 8 },
      },
      required: ["nome", "età", "iscritta"],
      additionalProperties: false,
    },
  },
  {
    name: "event",
    text: "The Festa della Musica starts on 21 June 2026 at 18:30 CEST; details on https://example.org/festa. Status: confirmed.",
    schema: {
      type: "object",
      properties: {
        titolo: { type: "string", maxLength: 16 },
        giorno: { type: "string", format: "date" },
        inizio: { type: "string", format: "date-time" },
        sito: { type: "string", format: "uri" },
        stato: { type: "string", enum: ["confermato", "annullato", "rinviato"] },
        versione: { const: 2 },
      },
      required: ["titolo", "giorno", "inizio", "sito", "stato", "versione"],
      additionalProperties: false,
    },
  },
  {
    name: "codes",
    text: "Pratica AB-123, codice fiscale RSSGLI90A41H501X, CAP 00184, reparto città-nord, note: ciao a tutti.",
    schema: {
      type: "object",
      properties: {
        pratica: { type: "string", pattern: "^[A-Z]{2}-\\d{3}$" },
        codiceFiscale: { type: "string", pattern: "^[A-Z]{6}[0-9]{2}[A-EHLMPR-T][0-9]{2}[A-Z][0-9]{3}[A-Z]$" },
        cap: { type: "string", pattern: "^[0-9]{5}$" },
        reparto: { type: "string", pattern: "^(città|paese)-[a-zàèéìòù]{1,6}$" },
        // Not anchored: any text that contains "ciao" matches.
        saluto: { type: "string", pattern: "ciao" },
      },
      required: ["pratica", "codiceFiscale", "cap", "reparto", "saluto"],
      additionalProperties: false,
    },
  },
  {
    name: "measurements",
    text: "Station 7 at latitude 45.46, longitude 9.19 measured 18.5 °C, humidity 0.62, 3 alarms; the previous reading is missing.",
    schema: {
      type: "object",
      properties: {
        stazione: { type: "integer", minimum: 1, maximum: 999 },
        latitudine: { type: "number", minimum: -90, maximum: 90 },
        longitudine: { type: "number", minimum: -180, maximum: 180 },
        temperatura: { type: "number", minimum: -50.5, maximum: 60.25 },
        umidità: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1 },
        allarmi: { type: "integer", minimum: 0 },
        contatore: { type: "integer", minimum: 10000000000 },
        precedente: { type: ["number", "null"], maximum: 100 },
      },
      required: ["stazione", "latitudine", "longitudine", "temperatura", "umidità", "allarmi", "contatore", "precedente"],
      additionalProperties: false,
    },
  },
  {
    name: "tree",
    text: "Cartella radice 'progetti' con le sottocartelle 'nesso' (che contiene 'src') e 'appunti'.",
    schema: {
      $defs: {
        node: {
          type: "object",
          properties: {
            name: { type: "string", minLength: 1, maxLength: 8 },
            children: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 },
          },
          required: ["name", "children"],
          additionalProperties: false,
        },
      },
      $ref: "#/$defs/node",
    },
  },
  {
    name: "geometry",
    text: "A polygon with vertices (0, 0), (4, 0) and (4, 3), tagged 'triangolo' and 'rettangolo'; its label is at (2, 1, 'A').",
    schema: {
      type: "object",
      properties: {
        vertici: {
          type: "array",
          items: { type: "array", prefixItems: [{ type: "number" }, { type: "number" }], items: false, minItems: 2 },
          minItems: 3,
          maxItems: 4,
        },
        etichette: { type: "array", items: { type: "string", maxLength: 10 }, minItems: 1 },
        // A tuple with a typed rest: two coordinates, then up to two strings.
        posizione: {
          type: "array",
          prefixItems: [{ type: "integer", minimum: 0, maximum: 10 }, { type: "integer", minimum: 0, maximum: 10 }],
          items: { type: "string", maxLength: 3 },
          minItems: 2,
          maxItems: 4,
        },
      },
      required: ["vertici", "etichette", "posizione"],
      additionalProperties: false,
    },
  },
  {
    name: "payment",
    text: "Pagato 25,50 euro con carta che termina con 4242; in alternativa bonifico IT60X0542811101000000123456.",
    schema: {
      type: "object",
      properties: {
        metodo: {
          oneOf: [
            {
              type: "object",
              properties: { tipo: { const: "carta" }, ultime4: { type: "string", pattern: "^[0-9]{4}$" } },
              required: ["tipo", "ultime4"],
              additionalProperties: false,
            },
            {
              type: "object",
              properties: { tipo: { const: "bonifico" }, iban: { type: "string", pattern: "^IT[0-9]{2}[A-Z][0-9]{10}[0-9A-Z]{12}$" } },
              required: ["tipo", "iban"],
              additionalProperties: false,
            },
          ],
        },
        importo: { anyOf: [{ type: "number", minimum: 0, maximum: 10000 }, { type: "string", pattern: "^[0-9]+,[0-9]{2} €$" }] },
      },
      required: ["metodo", "importo"],
      additionalProperties: false,
    },
  },
  {
    name: "employee",
    text: "Marco Bianchi, matricola 1042, lavora nel reparto vendite da marzo 2021.",
    schema: {
      $defs: {
        person: {
          type: "object",
          properties: { nome: { type: "string", maxLength: 12 }, cognome: { type: "string", maxLength: 12 } },
          required: ["nome", "cognome"],
        },
      },
      allOf: [
        { $ref: "#/$defs/person" },
        {
          type: "object",
          properties: {
            matricola: { type: "integer", minimum: 1, maximum: 99999 },
            reparto: { type: "string", enum: ["vendite", "acquisti", "logistica"] },
          },
          required: ["matricola"],
        },
      ],
    },
  },
  {
    name: "settings",
    text: "Theme dark, font size 14; volume levels: music 80, voices 65, effects 30; any other preference is free-form.",
    schema: {
      type: "object",
      properties: {
        tema: { type: "string", enum: ["chiaro", "scuro"] },
        // A map from channel names to levels: only additionalProperties constrains it.
        volumi: { type: "object", additionalProperties: { type: "integer", minimum: 0, maximum: 100 } },
        // Declared keys plus free-form extra members of any JSON type.
        extra: { type: "object", properties: { versione: { type: "integer", minimum: 1, maximum: 9 } }, additionalProperties: true },
      },
      required: ["tema", "volumi", "extra"],
      additionalProperties: false,
    },
  },
  {
    name: "multilingual",
    text: "Città: Napoli 🍕. Risposta: sì, perché il tempo è bello. Nessun codice postale. Voto: quattro su cinque.",
    schema: {
      type: "object",
      properties: {
        città: { type: "string", maxLength: 10 },
        "nota 📝": { type: "string", minLength: 1, maxLength: 3 },
        risposta: { enum: ["sì", "no", "forse 🤔", 4, null, { motivo: "perché" }] },
        lingua: { const: "italiano" },
        codice: { type: "null" },
        voto: { type: ["integer", "string"], minimum: 1, maximum: 5, maxLength: 7 },
        commento: { type: "string", nullable: true, maxLength: 6 },
      },
      required: ["città", "nota 📝", "risposta", "lingua", "codice", "voto", "commento"],
      additionalProperties: false,
    },
  },
];

/**
 * Lists the features a schema uses: each keyword (`minLength`), each format (`format:date`), the
 * kind of each additionalProperties (`additionalProperties:false|true|schema`), type arrays and
 * `$ref:recursive` when a `$ref` target refers to itself again.
 */
export function schemaFeatures(schema: unknown): Set<string> {
  const features = new Set<string>();
  const visit = (node: unknown, refsOnPath: string[]): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, refsOnPath);
      return;
    }
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    for (const [keyword, value] of Object.entries(record)) {
      features.add(keyword);
      if (keyword === "format") features.add(`format:${String(value)}`);
      if (keyword === "type" && Array.isArray(value)) features.add("type:array-of-types");
      if (keyword === "additionalProperties") {
        features.add(`additionalProperties:${typeof value === "boolean" ? String(value) : "schema"}`);
      }
    }
    if (typeof record.$ref === "string") {
      if (refsOnPath.includes(record.$ref)) {
        features.add("$ref:recursive");
        return;
      }
      visit(resolveLocalRef(schema, record.$ref), [...refsOnPath, record.$ref]);
    }
    for (const [keyword, value] of Object.entries(record)) {
      // Enum and const values are data, not subschemas.
      if (keyword === "enum" || keyword === "const") continue;
      // $defs entries are reached through the $refs that use them.
      if (keyword === "$defs") continue;
      if (keyword === "properties" && typeof value === "object" && value !== null) {
        for (const property of Object.values(value)) visit(property, refsOnPath);
        continue;
      }
      visit(value, refsOnPath);
    }
  };
  visit(schema, []);
  return features;
}

function resolveLocalRef(document: unknown, pointer: string): unknown {
  let target = document;
  for (const token of pointer.replace(/^#\/?/, "").split("/").filter((part) => part !== "")) {
    target = (target as Record<string, unknown>)[token.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return target;
}
