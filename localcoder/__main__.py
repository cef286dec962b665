from localcoder.cli import main

main()
