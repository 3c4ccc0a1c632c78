/** One line of the Engine API's `/events` stream, as far as the controller reads it. */
export interface DockerEvent {
  Type?: string;
  Action?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}
