// What a TypeScript integrator writes against the types openapi-typescript generates from
// openapi/openapi.json (scripts/spec_check.sh compiles it with tsc --strict): the spec's own
// publish example, an event's data narrowed by its shape, an open problem document, a page.
import type { components, operations } from "./api";

type Schemas = components["schemas"];

// The spec's own publish example.
const publish: Schemas["PublishEvent"] = {
  type: "loyalty.points.changed",
  tenant: "maysternia-hlyny",
  subject: "customer/7402918365521",
  idempotency_key: "order-5938201746113-points",
  data: { customer_id: "7402918365521", balance: 230 },
};

// An event's data, narrowed by its type.
function total(e: Schemas["order.created"]): string | undefined {
  const d = e.data;
  return "total" in d ? d.total.amount : undefined;
}

const problem: Schemas["Problem"] = {
  type: "https://omnigate.dev/problems/not-found",
  title: "Not found",
  status: 404,
  errors: ["extension members are open"],
};

type ListSources = operations["sources.list"]["responses"][200]["content"]["application/json"];
const page: ListSources = { sources: [], done: true };

export { publish, total, problem, page };
