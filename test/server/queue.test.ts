import { describe, expect, it } from "vitest";

import { DisposedError, NessoError } from "../../src/errors.js";
import { RequestQueue } from "../../src/server/queue.js";

/** Creates a task that stays running until release() is called. */
function gate<T>(value: T) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return { task: async () => (await released, value), release };
}

describe("RequestQueue", () => {
  it("runs requests one at a time in arrival order", async () => {
    const queue = new RequestQueue({ maxWaiting: 5 });
    const order: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const tasks = [0, 1, 2, 3, 4].map((index) =>
      queue.run(async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 5 - index));
        order.push(index);
        running--;
        return index;
      }),
    );
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 4]);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(maxRunning).toBe(1);
  });

  it("rejects a request beyond the bound at once with BUSY", async () => {
    const queue = new RequestQueue({ maxWaiting: 2 });
    const first = gate("first");
    const running = queue.run(first.task);
    const waiting = [queue.run(async () => "second"), queue.run(async () => "third")];
    expect(queue.waitingCount).toBe(2);

    const rejected = queue.run(async () => "fourth", { label: "tools/call generate" });
    await expect(rejected).rejects.toBeInstanceOf(NessoError);
    await expect(rejected).rejects.toMatchObject({ code: "BUSY" });
    await expect(rejected).rejects.toThrow(/tools\/call generate: the server is busy .*queue limit is 2/);

    first.release();
    expect(await running).toBe("first");
    expect(await Promise.all(waiting)).toEqual(["second", "third"]);
  });

  it("removes an aborted waiter and moves the others up", async () => {
    const queue = new RequestQueue({ maxWaiting: 3 });
    const first = gate(1);
    const running = queue.run(first.task);
    const controller = new AbortController();
    const positions: number[] = [];
    const aborted = queue.run(async () => 2, { signal: controller.signal });
    const last = queue.run(async () => 3, { onPosition: (position) => positions.push(position) });
    expect(positions).toEqual([2]);

    controller.abort(new Error("cancelled by the client"));
    await expect(aborted).rejects.toThrow("cancelled by the client");
    expect(queue.waitingCount).toBe(1);
    expect(positions).toEqual([2, 1]);

    first.release();
    expect(await running).toBe(1);
    expect(await last).toBe(3);
    expect(positions).toEqual([2, 1, 0]);
  });

  it("keeps serving after a task throws", async () => {
    const queue = new RequestQueue({ maxWaiting: 1 });
    await expect(queue.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await queue.run(async () => "next")).toBe("next");
    expect(queue.busy).toBe(false);
  });

  it("rejects waiting requests on close", async () => {
    const queue = new RequestQueue({ maxWaiting: 1 });
    const first = gate("done");
    const running = queue.run(first.task);
    const waiting = queue.run(async () => "never");
    queue.close();
    queue.close();
    await expect(waiting).rejects.toBeInstanceOf(DisposedError);
    await expect(queue.run(async () => "later")).rejects.toBeInstanceOf(DisposedError);
    first.release();
    expect(await running).toBe("done");
  });

  it("rejects a negative bound", () => {
    expect(() => new RequestQueue({ maxWaiting: -1 })).toThrow(/maxWaiting must be an integer >= 0, got -1/);
  });
});
