/** The node agent's conditions (why it holds back), shown in its /status by type. */
export interface NodeCondition {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
}

export type NodeConditions = Map<string, NodeCondition>;
