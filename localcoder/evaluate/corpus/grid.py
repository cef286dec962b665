"""Shortest paths on a character grid: breadth-first search and A* with a Manhattan heuristic."""

import heapq
from collections import deque

WALL = "#"
MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0))


def parse(text):
    grid = [list(line) for line in text.strip().splitlines()]
    start = goal = None
    for row, line in enumerate(grid):
        for col, char in enumerate(line):
            if char == "S":
                start = (row, col)
            elif char == "G":
                goal = (row, col)
    if start is None or goal is None:
        raise ValueError("the grid needs an S and a G")
    return grid, start, goal


def neighbours(grid, cell):
    row, col = cell
    for d_row, d_col in MOVES:
        r, c = row + d_row, col + d_col
        if 0 <= r < len(grid) and 0 <= c < len(grid[r]) and grid[r][c] != WALL:
            yield (r, c)


def bfs(grid, start, goal):
    previous = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for step in neighbours(grid, cell):
            if step not in previous:
                previous[step] = cell
                queue.append(step)
    return walk_back(previous, goal)


def astar(grid, start, goal):
    def estimate(cell):
        return abs(cell[0] - goal[0]) + abs(cell[1] - goal[1])

    frontier = [(estimate(start), 0, start)]
    cost = {start: 0}
    previous = {start: None}
    while frontier:
        _, spent, cell = heapq.heappop(frontier)
        if cell == goal:
            break
        if spent > cost[cell]:
            continue
        for step in neighbours(grid, cell):
            new_cost = spent + 1
            if new_cost < cost.get(step, float("inf")):
                cost[step] = new_cost
                previous[step] = cell
                heapq.heappush(frontier, (new_cost + estimate(step), new_cost, step))
    return walk_back(previous, goal)


def walk_back(previous, goal):
    if goal not in previous:
        return []
    path, cell = [], goal
    while cell is not None:
        path.append(cell)
        cell = previous[cell]
    return path[::-1]


def draw(grid, path):
    canvas = [row[:] for row in grid]
    for row, col in path[1:-1]:
        canvas[row][col] = "."
    return "\n".join("".join(row) for row in canvas)


MAZE = """
S..#......
.#.#.####.
.#...#....
.#####.##.
......#..G
"""

if __name__ == "__main__":
    grid, start, goal = parse(MAZE)
    route = astar(grid, start, goal)
    assert len(route) == len(bfs(grid, start, goal))
    print(draw(grid, route))
    print(f"{len(route) - 1} steps")
